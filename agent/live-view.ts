/**
 * The demo's live view: what the agent reads, each cycle, in the terminal. On a TTY the screen is
 * redrawn in place; otherwise (a pipe, a log, a test) one line per cycle is printed.
 */
import type { BatteryReading, MeterReading, PvReading } from '../drivers/classes.js';
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
    default:
      return '';
  }
}

function status(d: DeviceState): string {
  if (d.availability.state === 'offline') return `OFFLINE (${d.availability.reason})`;
  return d.availability.state;
}

export function renderScreen(snapshot: SiteSnapshot, header: string[], footer: string[] = []): string {
  const time = new Date(snapshot.tsMs).toISOString().replace('T', ' ').slice(0, 19);
  const rows = snapshot.devices.map((d) => [d.id, d.deviceClass, status(d), watts(d.reading?.powerW), deviceDetails(d)]);
  const widths = [8, 8, 8, 10].map((w, i) => Math.max(w, ...rows.map((r) => r[i]!.length)));
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
    `site: grid ${grid}   PV ${watts(s.pvPowerW)}   battery ${watts(s.batteryPowerW)}${s.batterySocPct === undefined ? '' : ` at ${s.batterySocPct.toFixed(1)} %`}`,
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
    return `${d.id} ${watts(d.reading.powerW)}${extra}`;
  });
  return `${time} ${parts.join(' | ')}`;
}
