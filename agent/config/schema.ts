/**
 * The configuration schema: one zod schema gives validation, the TypeScript types (`Config`) and the
 * JSON Schema for editors (schema/flexgate.schema.json, written by write-json-schema.ts and checked
 * to be current by a test). Every object is strict: an unknown key is an error, so a typo is never
 * silently ignored.
 */
import { z } from 'zod';

export const DEVICE_CLASSES = ['meter', 'pv', 'battery', 'ev-charger', 'hvac', 'load'] as const;

/** Which device classes each driver can drive today. */
export const DRIVER_CLASSES = {
  sunspec: ['meter', 'pv', 'battery'],
  profile: ['meter', 'ev-charger', 'hvac', 'load'],
  mqtt: ['meter', 'ev-charger', 'hvac', 'load'],
} as const satisfies Record<string, readonly (typeof DEVICE_CLASSES)[number][]>;

const BAUD_RATES: readonly number[] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200];

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

export const tcpConnectionSchema = z
  .strictObject({
    host: z.string().min(1).describe('IP address or host name of the device or Modbus TCP gateway'),
    port: int(1, 65535).default(502).describe('Modbus TCP port'),
  })
  .describe('Modbus TCP');

export const rtuConnectionSchema = z
  .strictObject({
    path: z.string().min(1).describe('serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...'),
    baudRate: z
      .number()
      .int()
      .refine((b) => BAUD_RATES.includes(b), `expected one of ${BAUD_RATES.join(', ')}`)
      .default(9600)
      .describe('one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200'),
    parity: z.enum(['none', 'even', 'odd']).default('none'),
    dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
    stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
    framing: z.enum(['rtu', 'ascii']).default('rtu').describe('"ascii" for Modbus ASCII devices (e.g. ABL chargers)'),
  })
  .describe('Modbus RTU (or ASCII) over RS-485');

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const address = () => z.string().regex(ADDRESS, 'expected an address: 0x and 40 hex digits');

export const mqttConnectionSchema = z
  .strictObject({
    topic: z
      .string()
      .regex(/^[^#+]+$/, 'expected a topic without wildcards')
      .describe("the device's own base topic, e.g. shellyplusplugs-a8032ab12345"),
    url: z
      .url({ protocol: /^(mqtt|mqtts|ws|wss)$/, error: 'expected an mqtt://, mqtts://, ws:// or wss:// URL' })
      .optional()
      .describe('the broker the device talks to; default: the local API broker'),
    username: z.string().optional(),
    password: z.string().optional(),
  })
  .describe('a device on an MQTT broker');

export const connectionSchema = z
  .strictObject({
    tcp: tcpConnectionSchema.optional(),
    rtu: rtuConnectionSchema.optional(),
    mqtt: mqttConnectionSchema.optional(),
  })
  .superRefine((c, ctx) => {
    const found = (['tcp', 'rtu', 'mqtt'] as const).filter((k) => c[k] !== undefined);
    if (found.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: found.length === 0 ? 'expected exactly one of "tcp", "rtu" or "mqtt", found none' : `expected exactly one of "tcp", "rtu" or "mqtt", found ${found.join(' and ')}`,
      });
    }
  })
  .describe('how the device is reached: exactly one of tcp, rtu or mqtt');

const evChargerSettingsSchema = z
  .strictObject({
    phases: z.union([z.literal(1), z.literal(3)]).default(3).describe('phases wired to the charger'),
    minCurrentA: int(6, 32).default(6).describe('lowest current per phase (IEC 61851: 6 A)'),
    maxCurrentA: int(6, 80).default(16).describe('highest current per phase the installation allows'),
    voltageV: int(100, 260).default(230),
    departure: z
      .strictObject({
        time: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM').describe('usual departure, local time of the gateway'),
        energyWh: int(0, 200_000).describe('energy a session must have received by then'),
      })
      .optional()
      .describe('charging is never cut back when the rest of the session could not be delivered by the departure time otherwise'),
  })
  .describe('ev-charger devices: limits flexgate keeps to');

const hvacSettingsSchema = z
  .strictObject({
    ratedPowerW: int(100, 50_000).default(2000).describe('typical electrical power while running, for planning'),
    comfortMinC: z.number().min(5).max(30).default(19).describe('lowest indoor temperature flexgate may cause'),
    comfortMaxC: z.number().min(10).max(35).default(23).describe('highest indoor temperature flexgate may cause'),
    maxOffsetC: z.number().min(0).max(10).default(3).describe('setpoint-offset devices: largest offset flexgate uses, K'),
    minSwitchIntervalMs: int(0, 24 * 3_600_000).optional().describe("SG Ready devices: at least this long between changes (never below the profile's minimum)"),
  })
  .refine((h) => h.comfortMinC < h.comfortMaxC, { message: 'expected comfortMinC < comfortMaxC', path: ['comfortMaxC'] })
  .describe('hvac devices: the comfort band and switching limits');

const loadSettingsSchema = z
  .strictObject({
    ratedPowerW: int(1, 50_000).describe('power while on, for planning'),
    minOnMs: int(0, 24 * 3_600_000).default(300_000).describe('stays on at least this long once switched on'),
    minOffMs: int(0, 24 * 3_600_000).default(300_000).describe('stays off at least this long once switched off'),
  })
  .describe('load devices: switching limits');

const batterySettingsSchema = z
  .strictObject({
    reserveSocPct: z.number().min(0).max(100).default(10).describe('flexgate never discharges below this state of charge'),
  })
  .describe('battery devices: limits flexgate keeps to');

export const deviceSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'expected 1-32 characters a-z, 0-9, "-" or "_", starting with a letter or digit')
      .describe('short name used in topics, the store and the CLI'),
    class: z.enum(DEVICE_CLASSES),
    driver: z.enum(Object.keys(DRIVER_CLASSES) as [keyof typeof DRIVER_CLASSES]),
    profile: z
      .string()
      .min(1)
      .optional()
      .describe('drivers profile and mqtt: a shipped profile name (flexgate profiles list) or the path of a profile file'),
    connection: connectionSchema,
    unitId: int(0, 255).default(1).describe('Modbus unit id (slave id); 1-247 on RS-485'),
    pollIntervalMs: int(200, 3_600_000).default(1000),
    timeoutMs: int(50, 30_000).default(1000).describe('Modbus request timeout'),
    offlineRetryMaxMs: int(200, 3_600_000)
      .default(5000)
      .describe('a device that keeps failing is tried less often, at most this long apart, so it cannot starve its bus'),
    role: z
      .enum(['site', 'submeter'])
      .optional()
      .describe('meters only: "site" (default) is the grid connection point; "submeter" measures one circuit'),
    sunspec: z
      .strictObject({
        baseAddress: z
          .union([z.literal(0), z.literal(40000), z.literal(50000)])
          .optional()
          .describe('skip discovery and use this base address'),
      })
      .optional(),
    evCharger: evChargerSettingsSchema.optional(),
    hvac: hvacSettingsSchema.optional(),
    load: loadSettingsSchema.optional(),
    battery: batterySettingsSchema.optional(),
  })
  .superRefine((d, ctx) => {
    const sections = { evCharger: 'ev-charger', hvac: 'hvac', load: 'load', battery: 'battery' } as const;
    for (const [key, cls] of Object.entries(sections)) {
      if (d[key as keyof typeof sections] !== undefined && d.class !== cls) {
        ctx.addIssue({ code: 'custom', path: [key], message: `only ${cls} devices have a ${key} section (this device is ${d.class})`, input: d[key as keyof typeof sections] });
      }
    }
    if (d.class === 'load' && d.load === undefined) {
      ctx.addIssue({ code: 'custom', path: ['load'], message: 'load devices need a load section with at least ratedPowerW', input: undefined });
    }
    if (d.driver === 'sunspec' && d.profile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['profile'], message: 'the sunspec driver discovers the device itself: remove profile', input: d.profile });
    }
    if (d.driver !== 'sunspec' && d.profile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['profile'], message: `driver "${d.driver}" needs a profile (a shipped profile name or a file)`, input: undefined });
    }
    if (d.driver === 'mqtt' && !d.connection.mqtt) {
      ctx.addIssue({ code: 'custom', path: ['connection'], message: 'driver "mqtt" needs connection.mqtt', input: d.connection });
    }
    if (d.driver !== 'mqtt' && d.connection.mqtt) {
      ctx.addIssue({ code: 'custom', path: ['connection', 'mqtt'], message: `driver "${d.driver}" talks Modbus: use connection.tcp or connection.rtu`, input: d.connection.mqtt });
    }
    if (d.evCharger && d.evCharger.minCurrentA > d.evCharger.maxCurrentA) {
      ctx.addIssue({ code: 'custom', path: ['evCharger', 'minCurrentA'], message: 'expected minCurrentA ≤ maxCurrentA', input: d.evCharger.minCurrentA });
    }
    const supported: readonly string[] = DRIVER_CLASSES[d.driver];
    if (!supported.includes(d.class)) {
      ctx.addIssue({
        code: 'custom',
        path: ['class'],
        message: `driver "${d.driver}" cannot drive class "${d.class}" (it drives: ${supported.join(', ')})`,
        input: d.class,
      });
    }
    if (d.role !== undefined && d.class !== 'meter') {
      ctx.addIssue({ code: 'custom', path: ['role'], message: 'only meters have a role', input: d.role });
    }
    if (d.connection.rtu && (d.unitId < 1 || d.unitId > 247)) {
      ctx.addIssue({ code: 'custom', path: ['unitId'], message: 'expected 1-247 on an RS-485 line', input: d.unitId });
    }
  });

export const configSchema = z
  .strictObject({
    gateway: z.strictObject({
      name: z
        .string()
        .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected 1-63 characters a-z, 0-9 or "-", starting with a letter or digit')
        .describe('this gateway\'s name, used in local MQTT topics (flexgate/<name>/...)'),
      dataDir: z.string().min(1).describe('directory for the store and keys; must be writable'),
    }),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
      })
      .default({ level: 'info' }),
    store: z
      .strictObject({
        flushIntervalMs: int(1000, 10 * MINUTE_MS).default(10_000).describe('how often buffered readings are written to disk'),
        rawRetentionMs: int(MINUTE_MS, 366 * DAY_MS).default(7 * DAY_MS).describe('raw readings are kept this long, then folded into aggregates'),
        aggregateBucketMs: int(MINUTE_MS, DAY_MS).default(15 * MINUTE_MS),
        aggregateRetentionMs: int(DAY_MS, 20 * 366 * DAY_MS).default(2 * 365 * DAY_MS),
      })
      .default({ flushIntervalMs: 10_000, rawRetentionMs: 7 * DAY_MS, aggregateBucketMs: 15 * MINUTE_MS, aggregateRetentionMs: 2 * 365 * DAY_MS }),
    localApi: z
      .strictObject({
        mqtt: z
          .strictObject({
            url: z.url({ protocol: /^(mqtt|mqtts|ws|wss)$/, error: 'expected an mqtt://, mqtts://, ws:// or wss:// URL' }).optional().describe('an MQTT broker to use, e.g. mqtt://127.0.0.1:1883 (Mosquitto on the gateway)'),
            embedded: z
              .strictObject({ host: z.string().default('127.0.0.1'), port: int(0, 65535).default(1883) })
              .optional()
              .describe('run a broker inside the agent instead'),
            username: z.string().optional().describe('with url: the agent logs in with it; with embedded: every client must'),
            password: z.string().optional(),
            baseTopic: z.string().regex(/^[a-zA-Z0-9_-]+(\/[a-zA-Z0-9_-]+)*$/).default('flexgate'),
          })
          .superRefine((m, ctx) => {
            if ((m.url ? 1 : 0) + (m.embedded ? 1 : 0) !== 1) {
              ctx.addIssue({ code: 'custom', message: 'expected exactly one of "url" or "embedded"' });
            }
          }),
      })
      .optional()
      .describe('the local MQTT API (bridge topics, device state, requests)'),
    uplink: z
      .strictObject({
        url: z.url({ protocol: /^(mqtt|mqtts|ws|wss)$/, error: 'expected an mqtt://, mqtts://, ws:// or wss:// URL' }).describe("the aggregator's broker"),
        username: z.string().optional(),
        password: z.string().optional(),
        tls: z
          .strictObject({
            caFile: z.string().optional().describe('PEM file of the CA that signed the broker certificate'),
            certFile: z.string().optional().describe('client certificate (PEM), if the broker asks for one'),
            keyFile: z.string().optional().describe('client key (PEM)'),
            rejectUnauthorized: z.boolean().default(true),
          })
          .optional(),
      })
      .optional()
      .describe("the aggregator's MQTT broker (PROTOCOL.md §6): status, proofs"),
    metering: z
      .strictObject({
        leafIntervalMs: int(1000, 15 * MINUTE_MS).default(10_000).describe('one leaf (site-meter reading) this often'),
        intervalMs: int(5000, DAY_MS)
          .refine((ms) => DAY_MS % ms === 0, 'expected a length that divides a day (e.g. 60000, 300000, 900000)')
          .default(15 * MINUTE_MS)
          .describe('settlement interval, aligned to the unix epoch; one signed proof each'),
        proofRetentionMs: int(DAY_MS, 20 * 366 * DAY_MS).default(2 * 365 * DAY_MS).describe('leaves and salts are kept this long, so any reading can be proven'),
      })
      .optional()
      .describe('metering proofs (PROTOCOL.md §5): needs a site meter, a gateway key (flexgate keys init) and chain'),
    chain: z
      .strictObject({
        rpcUrl: z.url({ protocol: /^(http|https|ws|wss)$/, error: 'expected an http://, https://, ws:// or wss:// URL' }),
        chainId: int(1, Number.MAX_SAFE_INTEGER),
        contracts: z.strictObject({
          proofs: address().describe('the proof registry'),
        }),
        confirmations: int(1, 1000).default(2).describe('blocks (counting the one holding it) before a proof counts as anchored'),
        pollIntervalMs: int(100, 10 * MINUTE_MS).default(2000),
      })
      .optional()
      .describe('the EVM chain the proofs are anchored on'),
    dispatch: z
      .strictObject({
        trustedAggregators: z.array(address()).min(1, 'expected at least one aggregator address').describe('aggregators whose signed orders this gateway carries out'),
        chainId: int(1, Number.MAX_SAFE_INTEGER).optional().describe("the chain id in the orders' EIP-712 domain; default: chain.chainId"),
        siteMaxImportW: int(0, 1_000_000).describe('largest site import an order may ask for (the connection limit)'),
        siteMaxExportW: int(0, 1_000_000).describe('largest site export an order may ask for'),
        statusResendMs: int(1000, 10 * MINUTE_MS).default(30_000).describe('statuses not acknowledged by the broker are sent again this often'),
        deadManMs: int(2000, 15 * MINUTE_MS)
          .default(30_000)
          .describe('PV limits and battery setpoints carry a device revert timer of this length, written again while an order runs: they revert by themselves this long after flexgate stops'),
      })
      .optional()
      .describe('signed demand-response orders from aggregators (PROTOCOL.md §3): needs uplink and a gateway key'),
    devices: z.array(deviceSchema).min(1, 'expected at least one device'),
  })
  .superRefine((c, ctx) => {
    if (c.dispatch && !c.uplink) ctx.addIssue({ code: 'custom', path: ['dispatch'], message: "dispatch needs an uplink: section (orders arrive on the aggregator's broker)" });
    if (c.dispatch && c.dispatch.chainId === undefined && !c.chain) {
      ctx.addIssue({ code: 'custom', path: ['dispatch', 'chainId'], message: 'dispatch needs a chain id (dispatch.chainId or a chain: section): it is part of every signed order' });
    }
    if (c.metering && !c.chain) ctx.addIssue({ code: 'custom', path: ['metering'], message: 'metering needs a chain: section (its chain id is part of every signed proof)' });
    if (c.metering && !c.devices.some((d) => d.class === 'meter' && (d.role ?? 'site') === 'site')) {
      ctx.addIssue({ code: 'custom', path: ['metering'], message: 'metering needs a site meter (a device of class meter with role site)' });
    }
    const seen = new Map<string, number>();
    c.devices.forEach((d, i) => {
      const first = seen.get(d.id);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['devices', i, 'id'], message: `duplicate device id (also devices[${first}])`, input: d.id });
      } else seen.set(d.id, i);
    });
    const siteMeters = c.devices.map((d, i) => [d, i] as const).filter(([d]) => d.class === 'meter' && (d.role ?? 'site') === 'site');
    if (siteMeters.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['devices', siteMeters[1]![1], 'role'],
        message: `only one site meter is allowed (devices[${siteMeters[0]![1]}] is already the site meter); set role: submeter`,
        input: siteMeters[1]![0].role,
      });
    }
    // Devices on one RS-485 line share its settings, and unit ids on one bus are unique.
    const lines = new Map<string, { index: number; key: string }>();
    const units = new Map<string, number>();
    c.devices.forEach((d, i) => {
      if (d.connection.mqtt) return;
      const bus = d.connection.tcp ? `tcp ${d.connection.tcp.host}:${d.connection.tcp.port}` : d.connection.rtu ? `rtu ${d.connection.rtu.path}` : undefined;
      if (!bus) return;
      if (d.connection.rtu) {
        const r = d.connection.rtu;
        const key = `${r.framing === 'ascii' ? 'ASCII ' : ''}${r.baudRate} ${r.dataBits}${r.parity[0]!.toUpperCase()}${r.stopBits}`;
        const prev = lines.get(r.path);
        if (prev && prev.key !== key) {
          ctx.addIssue({
            code: 'custom',
            path: ['devices', i, 'connection', 'rtu'],
            message: `serial line ${r.path} is set to ${prev.key} by devices[${prev.index}]; all devices on one line must use the same settings`,
            input: key,
          });
        } else if (!prev) lines.set(r.path, { index: i, key });
      }
      // One unit may be two devices of different classes (a hybrid inverter: pv and battery).
      const unitKey = `${bus} unit ${d.unitId}`;
      const other = units.get(`${unitKey} ${d.class}`);
      if (other !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['devices', i, 'unitId'],
          message: `${unitKey} is already the ${d.class} devices[${other}]`,
          input: d.unitId,
        });
      } else units.set(`${unitKey} ${d.class}`, i);
    });
  });

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type DeviceConfig = Config['devices'][number];
export type ConnectionConfig = DeviceConfig['connection'];
