/**
 * The contract between a device profile's generic class layer (drivers/profiles) and the transport
 * that reaches the device: Modbus registers (drivers/profiles/modbus-transport.ts) or MQTT topics
 * (drivers/mqtt). A profile names *sources* (a register value, a JSON field) and *actions* (a register
 * write, an MQTT command); the class layer turns sources into class readings (scale, maps, sums) and
 * class controls into actions. Transports know nothing about device classes.
 */

/** A decoded source value: a number (already decoded from registers / JSON, before the profile's
 * scale), a boolean (coil, JSON true/false) or a string (JSON string, Modbus string). */
export type SourceValue = number | boolean | string;

/** One poll: every source the transport could read. A source that is unknown (sentinel value, stale,
 * missing JSON field, unparseable payload) is absent, never a made-up number; `problems` says why
 * for each absent source. */
export interface SourceSnapshot {
  values: Partial<Record<string, SourceValue>>;
  problems: Partial<Record<string, string>>;
}

export interface ProfileTransport {
  /** Opens what it needs (MQTT subscriptions); Modbus transports use the agent's bus and do nothing. */
  start(signal?: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  /** Reads every source of the profile. Rejects with a DeviceError (drivers/errors.ts) when the
   * device cannot be read at all (timeout, disconnected, every value stale / device offline). */
  read(): Promise<SourceSnapshot>;
  /** Runs the profile's action `name` with the already-encoded raw `value` (e.g. a register value, a
   * command payload variable). Resolves once the device confirmed it (Modbus: the write's answer;
   * MQTT: the next state showing it, or the broker's PUBACK when the profile declares no
   * confirmation). Rejects with a DeviceError. */
  act(name: string, value: SourceValue): Promise<void>;
  /** e.g. "modbus tcp 192.168.1.20:502 unit 255" or "mqtt shellyplusplugs-a8032ab1 on mqtt://127.0.0.1:1883". */
  describe(): string;
}
