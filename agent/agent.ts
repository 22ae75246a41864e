/**
 * The agent: owns the store, the buses, the devices, the control loop and the local API, and their
 * lifecycles. `start(signal)` brings them up in order; `stop()` takes them down in reverse, writing
 * buffered readings first. One failing part is logged and isolated (a device that is off, a broker
 * that is down); only a store that cannot be opened stops the start.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../drivers/classes.js';
import { systemClock, type Clock } from '../drivers/clock.js';
import { DisconnectedError } from '../drivers/errors.js';
import type { Log } from '../drivers/log.js';
import { createModbusBus } from '../drivers/modbus/index.js';
import type { BusConnection, ModbusBus } from '../drivers/modbus/types.js';
import { createSunSpecDevice } from '../drivers/sunspec/index.js';
import { createProfileDevice, type ProfileDeviceSettings } from '../drivers/profiles/device.js';
import { createMqttProfileTransport } from '../drivers/mqtt/transport.js';
import type { ProfileTransport } from '../drivers/profiles/transport.js';
import { loadDeviceProfiles } from './config/profiles.js';
import { formatProblems } from './config/load.js';
import { createModbusProfileTransport } from '../drivers/profiles/modbus-transport.js';
import type { Profile } from '../drivers/profiles/schema.js';
import type { Config, DeviceConfig } from './config/schema.js';
import { ControlLoop } from './control-loop.js';
import { DeviceHandle, type AvailabilityChange } from './device-handle.js';
import type { EmbeddedBroker } from './embedded-broker.js';
import { EventBus } from './events.js';
import { LocalApi, deviceStatePayload } from './local-api.js';
import type { Outbox } from '../ledger-client/outbox.js';
import type { GatewayKey } from './keys.js';
import type { Metering } from './metering.js';
import { readingValues, type SiteSnapshot } from './snapshot.js';
import type { SqliteOutboxStore } from './store/outbox-store.js';
import { Uplink } from './uplink.js';
import { openStore, RetentionRunner, type ReadingWriter, type Store } from './store/index.js';
import { VERSION } from './version.js';
import { PendingRestores } from './restore.js';
import { SqliteRestoreLedger } from './store/restore-ledger.js';
import type { OrderSide } from './dispatch/order-side.js';
import type { Dispatcher, DispatchDevice } from './dispatch/dispatcher.js';
import type { DeltaRangeW } from './dispatch/verify.js';
import type { BatteryReading, PvReading } from '../drivers/classes.js';

export interface AgentEvents {
  snapshot: SiteSnapshot;
  availability: AvailabilityChange;
  batchStored: { batchId: number; rows: number };
  proofSigned: { intervalStart: number; count: number; root: string };
  proofAnchored: { intervalStart: number; txHash: string; blockNumber: number };
}

export interface AgentOptions {
  config: Config;
  log: Log;
  clock?: Clock;
}

export const STORE_FILE = 'flexgate.db';

export function busKey(connection: DeviceConfig['connection']): string {
  if (connection.tcp) return `tcp ${connection.tcp.host}:${connection.tcp.port}`;
  if (connection.rtu) return `rtu ${connection.rtu.path}`;
  if (connection.mqtt) return `mqtt ${connection.mqtt.url ?? 'local'} ${connection.mqtt.topic}`;
  throw new Error('device connection has neither tcp, rtu nor mqtt');
}

/** The installer's per-class settings of a device, as the profile class layer takes them. */
function profileSettings(device: DeviceConfig): ProfileDeviceSettings {
  return {
    ...(device.evCharger ? { evCharger: device.evCharger } : {}),
    ...(device.hvac ? { hvac: device.hvac } : {}),
    ...(device.load ? { load: device.load } : {}),
  };
}

function busConnection(connection: DeviceConfig['connection']): BusConnection {
  if (connection.tcp) return { tcp: { host: connection.tcp.host, port: connection.tcp.port } };
  if (connection.rtu) return { rtu: { ...connection.rtu } };
  throw new Error('device connection has neither tcp nor rtu');
}

export class Agent {
  readonly events: EventBus<AgentEvents>;
  readonly config: Config;
  private readonly log: Log;
  private readonly clock: Clock;
  private store: Store | undefined;
  private writer: ReadingWriter | undefined;
  private retention: RetentionRunner | undefined;
  private readonly buses = new Map<string, ModbusBus>();
  private handles: DeviceHandle[] = [];
  private loop: ControlLoop | undefined;
  private localApi: LocalApi | undefined;
  private broker: EmbeddedBroker | undefined;
  private readonly startedAtMs: number;
  private stopping: Promise<void> | undefined;
  private key: GatewayKey | undefined;
  private uplink: Uplink | undefined;
  private metering: Metering | undefined;
  private outbox: Outbox | undefined;
  private outboxStore: SqliteOutboxStore | undefined;
  private readonly profiles = new Map<string, Profile>();
  private readonly transports: ProfileTransport[] = [];
  private restores: PendingRestores | undefined;
  private orderSide: OrderSide | undefined;
  private dispatcher: Dispatcher | undefined;
  private nextOrderTimer: ReturnType<Clock['setTimeout']> | undefined;
  /** Decisions queued before the control loop exists (orders of a persistent session) wait here. */
  private readonly loopReady: Promise<ControlLoop>;
  private resolveLoop: (loop: ControlLoop) => void = () => undefined;

  constructor(options: AgentOptions) {
    this.config = options.config;
    this.log = options.log;
    this.clock = options.clock ?? systemClock;
    this.events = new EventBus(this.log.child({ module: 'events' }));
    this.startedAtMs = this.clock.now();
    this.loopReady = new Promise((resolve) => {
      this.resolveLoop = resolve;
    });
  }

  /** The order book and dispatcher, when dispatch is configured (tests, the demo). */
  get dispatch(): { side: OrderSide; dispatcher: Dispatcher | undefined } | undefined {
    return this.orderSide ? { side: this.orderSide, dispatcher: this.dispatcher } : undefined;
  }

  get snapshot(): SiteSnapshot | undefined {
    return this.loop?.lastSnapshot;
  }

  get storePath(): string {
    return join(this.config.gateway.dataDir, STORE_FILE);
  }

  /** The URL of the local API broker (the embedded one's real port when port 0 was asked for). */
  get localBrokerUrl(): string | undefined {
    return this.broker?.url ?? this.config.localApi?.mqtt.url;
  }

  get localTopicPrefix(): string | undefined {
    return this.localApi?.topicPrefix;
  }

  /** Resolves when the local API is connected to its broker. */
  async localApiConnected(signal?: AbortSignal): Promise<void> {
    await this.localApi?.waitConnected(signal);
  }

  /** The meter at the grid connection point, if one is configured. */
  private get siteMeter(): DeviceConfig | undefined {
    return this.config.devices.find((d) => d.class === 'meter' && (d.role ?? 'site') === 'site');
  }

  busStats(): Record<string, ModbusBus['stats']> {
    return Object.fromEntries([...this.buses].map(([key, bus]) => [key, bus.stats]));
  }

  async start(signal?: AbortSignal): Promise<void> {
    const { config, clock } = this;
    if (signal?.aborted) throw new Error('agent start aborted');
    mkdirSync(config.gateway.dataDir, { recursive: true });
    this.store = openStore({
      path: this.storePath,
      clock,
      log: this.log.child({ module: 'store' }),
      rawRetentionMs: config.store.rawRetentionMs,
      aggregateRetentionMs: config.store.aggregateRetentionMs,
      aggregateBucketMs: config.store.aggregateBucketMs,
    });
    this.writer = this.store.createReadingWriter({
      flushIntervalMs: config.store.flushIntervalMs,
      // Fires only after the batch is committed (fsynced): the one moment it may be reported as stored.
      onBatchStored: (batchId, rows) => {
        const lastTsMs = rows.reduce((max, r) => Math.max(max, r.tsMs), 0);
        this.localApi?.publishEvent('readings_stored', { batchId, rows: rows.length, lastTsMs });
        this.events.emit('batchStored', { batchId, rows: rows.length });
      },
    });
    this.retention = new RetentionRunner(this.store, { clock, log: this.log.child({ module: 'retention' }) });
    this.retention.start();

    if (config.metering || config.uplink) {
      // The gateway's identity signs proofs and names its uplink topics: without it, do not start.
      // Loaded only then: keys.js brings the signature code (WebAssembly), which a gateway that only
      // polls does not carry.
      const { loadGatewayKey } = await import('./keys.js');
      this.key = loadGatewayKey(config.gateway.dataDir);
    }
    if (config.uplink && this.key) {
      this.uplink = new Uplink({ ...config.uplink, gateway: this.key.address, version: VERSION, log: this.log.child({ module: 'uplink' }), now: () => clock.now() });
      // Before the uplink connects: a persistent session delivers the orders queued while we were away at once.
      if (config.dispatch) await this.startOrderSide(config.dispatch, this.uplink, this.key);
      this.uplink.start();
    }
    await this.startMetering();

    // Profiles are checked before anything starts: a broken profile is a configuration error.
    const { profiles, problems } = loadDeviceProfiles(config);
    if (problems.length > 0) throw new Error(`device profiles:\n${formatProblems('config', problems)}`);
    for (const [id, profile] of profiles) this.profiles.set(id, profile);
    for (const device of config.devices) {
      if (device.connection.mqtt) continue;
      const key = busKey(device.connection);
      if (!this.buses.has(key)) {
        this.buses.set(key, createModbusBus({ connection: busConnection(device.connection), clock, log: this.log }));
      }
    }
    this.handles = config.devices.map((device) => this.createHandle(device));

    await this.startLocalApi();

    await Promise.all([...this.buses.values()].map((bus) => bus.start()));
    const store = this.store;
    this.restores = new PendingRestores(
      new SqliteRestoreLedger(store.database),
      (id) => this.handles.find((h) => h.id === id)?.connectedDevice,
      this.log.child({ module: 'restore' }),
      (deviceId) => this.localApi?.publishEvent('device_restored', { deviceId }),
    );
    const restores = this.restores;
    const writer = this.writer;
    const siteMeter = this.siteMeter;
    this.loop = new ControlLoop({
      clock,
      log: this.log.child({ module: 'loop' }),
      devices: this.handles,
      ...(siteMeter ? { siteMeterId: siteMeter.id } : {}),
      onReading: (deviceId, tsMs, reading) => writer.add({ deviceId, tsMs, values: readingValues(reading) }),
      onAvailability: (change) => {
        const a = change.availability;
        if (a.state !== 'unknown') store.recordAvailability(change.deviceId, change.tsMs, a.state === 'online', a.state === 'offline' ? a.reason : undefined);
        this.localApi?.publishAvailability(change.deviceId, a);
        // Keep the retained device state consistent with its availability.
        const handle = this.handles.find((h) => h.id === change.deviceId);
        if (handle) this.localApi?.publishDeviceState(handle.state(false));
        this.events.emit('availability', change);
      },
      onSnapshot: (snapshot) => {
        try {
          this.metering?.onSnapshot(snapshot);
        } catch (err) {
          this.log.error({ err }, 'metering failed in this cycle');
        }
        this.localApi?.publishSnapshot(snapshot);
        this.events.emit('snapshot', snapshot);
      },
      decide: async (snapshot) => {
        await restores.run();
        await this.decideDispatch(snapshot);
      },
    });
    if (this.orderSide) {
      const { Dispatcher } = await import('./dispatch/dispatcher.js');
      this.dispatcher = new Dispatcher({
        clock,
        log: this.log.child({ module: 'dispatcher' }),
        feedback: this.orderSide.book,
        audit: this.orderSide.audit,
        restoreLedger: this.orderSide.restoreLedger,
        devices: () => this.dispatchDevices(),
        cycleMs: this.loop.cycleMs,
        deadManMs: config.dispatch!.deadManMs,
        transaction: (fn) => this.orderSide!.store.transaction(fn),
        lazyTransaction: (fn) => this.orderSide!.store.lazyTransaction(fn),
      });
      this.orderSide.book.attachExecution(this.dispatcher);
    }
    this.resolveLoop(this.loop);
    this.loop.start();
    // One listener for the whole agent: the parts stop in order (loop, store, buses, API), not all at once.
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    this.log.info({ devices: config.devices.length, buses: this.buses.size, store: this.storePath }, 'agent started');
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.nextOrderTimer) this.clock.clearTimeout(this.nextOrderTimer);
    await this.loop?.stop();
    // Orders are not carried out by a stopped agent: every device it changed goes back to normal.
    await this.dispatcher?.releaseAll().catch((err: unknown) => this.log.error({ err }, 'could not restore the devices'));
    await this.orderSide?.stop().catch((err: unknown) => this.log.warn({ err }, 'status outbox did not stop cleanly'));
    await this.outbox?.stop();
    await this.uplink?.stop().catch((err: unknown) => this.log.warn({ err }, 'uplink did not stop cleanly'));
    this.retention?.stop();
    try {
      this.writer?.stop();
    } catch (err) {
      this.log.error({ err }, 'could not write the last readings');
    }
    await Promise.all([...this.buses.values()].map((bus) => bus.stop()));
    await Promise.all(this.transports.map((t) => t.stop().catch((err: unknown) => this.log.warn({ err }, 'device transport did not stop cleanly'))));
    await this.localApi?.stop().catch((err: unknown) => this.log.warn({ err }, 'local API did not stop cleanly'));
    await this.broker?.close();
    this.store?.close();
    this.log.info({}, 'agent stopped');
  }

  /** The order side (PROTOCOL.md §3): verification, order book, statuses; orders queue into the loop. */
  private async startOrderSide(dispatch: NonNullable<Config['dispatch']>, uplink: Uplink, key: GatewayKey): Promise<void> {
    const { config, clock, store } = this;
    if (!store) return;
    const { createOrderSide } = await import('./dispatch/order-side.js');
    const chainId = dispatch.chainId ?? config.chain?.chainId;
    if (chainId === undefined) throw new Error('dispatch needs a chain id (dispatch.chainId or chain.chainId)');
    this.orderSide = createOrderSide({
      db: store.database,
      clock,
      log: this.log,
      key,
      dispatch,
      chainId,
      deltaRangeW: () => this.deltaRangeW(),
      transport: uplink.statusTransport(),
      enqueue: (task) => this.loopReady.then((loop) => loop.enqueue(task)),
      // Statuses are signed once the decisions queued so far (and their device writes) are done.
      whenLoopIdle: () => (this.loop ? this.loop.enqueue(() => undefined) : Promise.resolve()),
      // An order accepted, ended, started or aborted: decide now, not at the next cycle.
      onChange: () => void this.loopReady.then((loop) => loop.enqueue(() => this.decideDispatch(loop.lastSnapshot))),
    });
    uplink.onOrder((raw) => this.orderSide?.intake.push(raw));
    this.orderSide.start();
  }

  /** Inside the loop's serial section: end what is due, then one dispatcher step; wake for the next start or end. */
  private async decideDispatch(snapshot: SiteSnapshot | undefined): Promise<void> {
    const side = this.orderSide;
    const dispatcher = this.dispatcher;
    if (!side || !dispatcher) return;
    const nowMs = this.clock.now();
    side.book.tick(nowMs);
    await dispatcher.step(snapshot, side.book.activeOrders(nowMs));
    const nextMs = side.book.nextChangeAtMs(this.clock.now());
    if (this.nextOrderTimer) this.clock.clearTimeout(this.nextOrderTimer);
    this.nextOrderTimer = undefined;
    if (nextMs !== undefined && !this.stopping) {
      const loop = this.loop;
      this.nextOrderTimer = this.clock.setTimeout(() => {
        this.nextOrderTimer = undefined;
        void loop?.enqueue(() => this.decideDispatch(loop.lastSnapshot));
      }, Math.max(0, nextMs - this.clock.now()));
    }
  }

  /** The devices the dispatcher may move, with the installer's limits. */
  private dispatchDevices(): DispatchDevice[] {
    return this.config.devices.map((d) => ({
      id: d.id,
      device: this.handles.find((h) => h.id === d.id)?.connectedDevice,
      settings: {
        ...(d.battery ? { batteryReserveSocPct: d.battery.reserveSocPct } : {}),
        ...(d.evCharger?.departure ? { evDeparture: d.evCharger.departure } : {}),
        ...(d.hvac ? { hvacComfort: { minC: d.hvac.comfortMinC, maxC: d.hvac.comfortMaxC } } : {}),
      },
    }));
  }

  /** What SITE_DELTA may ask for: the sum of the devices' ranges (config, or the device's own ratings). */
  private deltaRangeW(): DeltaRangeW {
    let minW = 0;
    let maxW = 0;
    const readings = new Map((this.snapshot?.devices ?? []).map((d) => [d.id, d.reading]));
    for (const d of this.config.devices) {
      const reading = readings.get(d.id);
      if (d.class === 'battery') {
        const r = reading as BatteryReading | undefined;
        minW -= r?.maxDischargeW ?? 0;
        maxW += r?.maxChargeW ?? 0;
      } else if (d.class === 'pv') {
        maxW += (reading as PvReading | undefined)?.ratedPowerW ?? 0;
      } else if (d.class === 'ev-charger') {
        const ev = d.evCharger ?? { maxCurrentA: 16, voltageV: 230, phases: 3 };
        const w = ev.maxCurrentA * ev.voltageV * ev.phases;
        minW -= w;
        maxW += w;
      } else if (d.class === 'hvac' || d.class === 'load') {
        const device = this.handles.find((h) => h.id === d.id)?.connectedDevice as { ratedPowerW?: number } | undefined;
        const w = device?.ratedPowerW ?? d.hvac?.ratedPowerW ?? d.load?.ratedPowerW ?? 0;
        minW -= w;
        maxW += w;
      }
    }
    return { minW, maxW };
  }

  /** Metering proofs: leaves from the site meter, signed intervals, anchored through the outbox. */
  private async startMetering(): Promise<void> {
    const { config, clock, key, store } = this;
    if (!config.metering || !config.chain || !key || !store) return;
    const siteMeter = this.siteMeter;
    if (!siteMeter) return;
    // Loaded only when metering is on: the chain libraries are most of the agent's start-up time.
    const [{ ChainClient }, { Outbox }, { Metering }, { queueProof, SqliteOutboxStore }] = await Promise.all([
      import('../ledger-client/chain.js'),
      import('../ledger-client/outbox.js'),
      import('./metering.js'),
      import('./store/outbox-store.js'),
    ]);
    const chain = config.chain;
    const outboxStore = new SqliteOutboxStore(store.database);
    this.outboxStore = outboxStore;
    this.outbox = new Outbox({
      chain: new ChainClient({ rpcUrl: chain.rpcUrl, chainId: chain.chainId, contracts: { proofs: chain.contracts.proofs as `0x${string}` }, confirmations: chain.confirmations }, key.privateKey, {
        log: this.log.child({ module: 'chain' }),
      }),
      store: outboxStore,
      clock,
      log: this.log.child({ module: 'outbox' }),
      pollIntervalMs: chain.pollIntervalMs,
      onMined: (item, anchor) => {
        const proof = { proof: { type: 'MeterProof', message: item.proof, signature: item.signature }, anchor };
        this.uplink?.publish('proof', proof);
        this.localApi?.publishEvent('proof_anchored', { intervalStart: item.proof.intervalStart, ...anchor });
        this.events.emit('proofAnchored', { intervalStart: item.proof.intervalStart, ...anchor });
      },
      onRejected: (intervalStart, reason) => this.log.error({ intervalStart, reason }, 'the proof registry will not accept this proof'),
    });
    this.metering = new Metering({
      db: store.database,
      clock,
      log: this.log.child({ module: 'metering' }),
      gateway: key.address,
      siteMeterId: siteMeter.id,
      leafIntervalMs: config.metering.leafIntervalMs,
      intervalMs: config.metering.intervalMs,
      proofRetentionMs: config.metering.proofRetentionMs,
      privateKey: key.privateKey,
      chainId: chain.chainId,
      // In the transaction that closes the interval: the proof and its anchoring job are one write.
      enqueue: (db, proof) => queueProof(db, proof.message.intervalStart, clock.now()),
      onClosed: (proof) => {
        const summary = { intervalStart: proof.message.intervalStart, count: proof.message.count, root: proof.message.root };
        this.localApi?.publishEvent('proof_signed', summary);
        this.events.emit('proofSigned', summary);
      },
    });
    this.metering.start();
    this.outbox.start();
  }

  private createHandle(device: DeviceConfig): DeviceHandle {
    const log = this.log.child({ module: 'device', device: device.id });
    const profile = this.profiles.get(device.id);
    const mqttConnection = device.connection.mqtt;
    if (mqttConnection && profile?.mqtt) {
      const section = profile.mqtt;
      const clock = this.clock;
      let transport: ProfileTransport | undefined;
      const connect = async (): Promise<Device> => {
        if (!transport) {
          const url = mqttConnection.url ?? this.localBrokerUrl;
          if (!url) throw new DisconnectedError(`${device.id}: no broker: set connection.mqtt.url or configure localApi.mqtt`);
          transport = createMqttProfileTransport({ section, topic: mqttConnection.topic, url, username: mqttConnection.username, password: mqttConnection.password, clock, log });
          this.transports.push(transport);
          await transport.start();
        }
        return createProfileDevice({ id: device.id, profile, transport, settings: profileSettings(device), clock, log });
      };
      return new DeviceHandle({ id: device.id, deviceClass: device.class, pollIntervalMs: device.pollIntervalMs, log, connect });
    }
    const bus = this.buses.get(busKey(device.connection));
    if (!bus) throw new Error(`no bus for device ${device.id}`);
    const unit = bus.unit(device.unitId, {
      timeoutMs: device.timeoutMs,
      backoff: { failuresBeforeBackoff: 2, initialMs: device.pollIntervalMs, maxMs: Math.max(device.pollIntervalMs, device.offlineRetryMaxMs) },
      ...(profile?.modbus ? { maxReadRegisters: profile.modbus.maxReadRegisters } : {}),
    });
    const clock = this.clock;
    const connect = profile
      ? async (): Promise<Device> => {
          const transport = createModbusProfileTransport({ unit, profile });
          return createProfileDevice({ id: device.id, profile, transport, settings: profileSettings(device), clock, log });
        }
      : (): Promise<Device> =>
          createSunSpecDevice({
            id: device.id,
            deviceClass: device.class,
            unit,
            log,
            ...(device.sunspec?.baseAddress !== undefined ? { baseAddress: device.sunspec.baseAddress } : {}),
          });
    return new DeviceHandle({ id: device.id, deviceClass: device.class, pollIntervalMs: device.pollIntervalMs, log, connect });
  }

  private async startLocalApi(): Promise<void> {
    const mqttConfig = this.config.localApi?.mqtt;
    if (!mqttConfig) return;
    let url = mqttConfig.url;
    if (mqttConfig.embedded) {
      // Loaded only when asked for: most gateways run Mosquitto, and aedes is start-up time and memory.
      const { startEmbeddedBroker } = await import('./embedded-broker.js');
      this.broker = await startEmbeddedBroker({
        ...mqttConfig.embedded,
        ...(mqttConfig.username !== undefined ? { credentials: { username: mqttConfig.username, password: mqttConfig.password ?? '' } } : {}),
      });
      url = this.broker.url;
      this.log.info({ url }, 'embedded MQTT broker listening');
    }
    if (!url) return;
    this.localApi = new LocalApi({
      url,
      ...(mqttConfig.username !== undefined ? { username: mqttConfig.username } : {}),
      ...(mqttConfig.password !== undefined ? { password: mqttConfig.password } : {}),
      baseTopic: mqttConfig.baseTopic,
      gatewayName: this.config.gateway.name,
      log: this.log.child({ module: 'local-api' }),
      info: () => this.info(),
      requests: {
        health_check: () => ({ healthy: true, uptimeMs: this.clock.now() - this.startedAtMs }),
        info: () => this.info(),
        devices: () => (this.snapshot?.devices ?? this.handles.map((h) => h.state(false))).map(deviceStatePayload),
        snapshot: () => {
          const s = this.snapshot;
          if (!s) throw new Error('no snapshot yet: the first control cycle has not finished');
          return { cycle: s.cycle, tsMs: s.tsMs, site: s.site, devices: s.devices.map(deviceStatePayload) };
        },
        store_stats: () => this.store?.stats(),
        proofs: () => {
          if (!this.outboxStore) throw new Error('metering proofs are not configured (metering: and chain: sections)');
          return { intervals: this.outboxStore.counts(), chainError: this.outbox?.lastError?.message ?? null };
        },
      },
    });
    this.localApi.start();
  }

  private info(): Record<string, unknown> {
    return {
      version: VERSION,
      gateway: { name: this.config.gateway.name },
      startedAtMs: this.startedAtMs,
      devices: this.config.devices.map((d) => ({ id: d.id, class: d.class, driver: d.driver, bus: busKey(d.connection), unitId: d.unitId, pollIntervalMs: d.pollIntervalMs })),
    };
  }
}
