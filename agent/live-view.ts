/**
 * The demo's live view: what the agent reads, each cycle, in the terminal. On a TTY the screen is
 * redrawn in place; otherwise (a pipe, a log, a test) one line per cycle is printed.
 */
import type { BatteryReading, EvChargerReading, HvacReading, LoadReading, MeterReading, PvReading } from '../drivers/classes.js';
import type { DeviceState, SiteSnapshot } from './snapshot.js';

const kWh = (wh: number | undefined) => (wh === undefined ? '—' : `${(wh / 1000).toFixed(1)} kWh`);
const watts = (w: number | undefined) => (w === undefined ? '—' : `${Math.round(w)} W`);

export function deviceDetails(d: DeviceState): string {
  const r = d.reading;
  if (!r) return '';
  switch (d.deviceClass) {
    case 'pv': {
      const pv = r as PvReading;
      return `limit ${pv.limitPct === undefined ? 'none' : `${pv.limitPct.toFixed(0)} %`}, rated ${watts(pv.ratedPowerW)}, lifetime ${kWh(pv.energyWh)}`;
    }
    case 'battery': {
      const b = r as BatteryReading;
      return `SoC ${b.socPct.toFixed(1)} %, ${b.powerW > 0 ? 'charging' : b.powerW < 0 ? 'discharging' : 'idle'}${b.capacityWh ? `, ${kWh(b.capacityWh)} capacity` : ''}`;
    }
    case 'meter': {
      const m = r as MeterReading;
      return `import ${kWh(m.importWh)}, export ${kWh(m.exportWh)}`;
    }
    case 'ev-charger': {
      const ev = r as EvChargerReading;
      const state = ev.charging ? 'charging' : ev.plugged ? 'plugged in' : 'no vehicle';
      return `${state}${ev.enabled === false ? ' (paused)' : ''}${ev.currentLimitA === undefined ? '' : `, limit ${ev.currentLimitA.toFixed(0)} A`}${ev.sessionEnergyWh === undefined ? '' : `, session ${kWh(ev.sessionEnergyWh)}`}`;
    }
    case 'hvac': {
      const h = r as HvacReading;
      const parts = [
        h.indoorC === undefined ? undefined : `indoor ${h.indoorC.toFixed(1)} °C`,
        h.outdoorC === undefined ? undefined : `outdoor ${h.outdoorC.toFixed(1)} °C`,
        h.sgReady === undefined ? undefined : `SG Ready ${h.sgReady}`,
        h.setpointOffsetC === undefined ? undefined : `offset ${h.setpointOffsetC >= 0 ? '+' : ''}${h.setpointOffsetC.toFixed(1)} K`,
      ];
      return parts.filter((p) => p !== undefined).join(', ');
    }
    case 'load': {
      const l = r as LoadReading;
      return `${l.on ? 'on' : 'off'}${l.energyWh === undefined ? '' : `, lifetime ${kWh(l.energyWh)}`}`;
    }
    default:
      return '';
  }
}

function powerOf(d: DeviceState): number | undefined {
  return (d.reading as { powerW?: number } | undefined)?.powerW;
}

function status(d: DeviceState): string {
  if (d.availability.state === 'offline') return `OFFLINE (${d.availability.reason})`;
  return d.availability.state;
}

export function renderScreen(snapshot: SiteSnapshot, header: string[], footer: string[] = []): string {
  const time = new Date(snapshot.tsMs).toISOString().replace('T', ' ').slice(0, 19);
  const rows = snapshot.devices.map((d) => [d.id, d.deviceClass, status(d), watts(powerOf(d)), deviceDetails(d)]);
  const widths = [8, 10, 8, 10].map((w, i) => Math.max(w, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 4 ? (i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)) : c)).join('  ');
  const s = snapshot.site;
  const grid = s.gridPowerW === undefined ? '—' : `${watts(s.gridPowerW)} (${s.gridPowerW >= 0 ? 'import' : 'export'})`;
  return [
    ...header,
    '',
    `${time} UTC   cycle ${snapshot.cycle}`,
    '',
    line(['device', 'class', 'status', 'power', 'details']),
    ...rows.map(line),
    '',
    `site: grid ${grid}   PV ${watts(s.pvPowerW)}   battery ${watts(s.batteryPowerW)}${s.batterySocPct === undefined ? '' : ` at ${s.batterySocPct.toFixed(1)} %`}` +
      `${s.evPowerW === undefined ? '' : `   EV ${watts(s.evPowerW)}`}${s.hvacPowerW === undefined ? '' : `   heat pump ${watts(s.hvacPowerW)}`}${s.loadPowerW === undefined ? '' : `   loads ${watts(s.loadPowerW)}`}`,
    ...footer,
  ].join('\n');
}

/** One line per cycle, for logs and pipes. */
export function renderLine(snapshot: SiteSnapshot): string {
  const time = new Date(snapshot.tsMs).toISOString().slice(11, 19);
  const parts = snapshot.devices.map((d) => {
    if (d.availability.state === 'offline') return `${d.id} offline (${d.availability.reason})`;
    if (!d.reading) return `${d.id} —`;
    const extra = d.deviceClass === 'battery' ? ` ${(d.reading as BatteryReading).socPct.toFixed(1)} %` : '';
    return `${d.id} ${watts(powerOf(d))}${extra}`;
  });
  return `${time} ${parts.join(' | ')}`;
}
