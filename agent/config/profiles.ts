/**
 * The device profiles a config names, loaded and checked against the devices that use them: a
 * missing or broken profile, a profile of another class, or a Modbus profile on an MQTT device is a
 * configuration problem, reported by `flexgate config validate` and before the agent starts.
 */
import { loadProfile, ProfileError } from '../../drivers/profiles/load.js';
import type { Profile } from '../../drivers/profiles/schema.js';
import type { ConfigProblem } from './load.js';
import type { Config } from './schema.js';

export function loadDeviceProfiles(config: Config): { profiles: Map<string, Profile>; problems: ConfigProblem[] } {
  const profiles = new Map<string, Profile>();
  const problems: ConfigProblem[] = [];
  config.devices.forEach((device, i) => {
    if (device.driver === 'sunspec' || device.profile === undefined) return;
    const path = `devices[${i}].profile`;
    let profile: Profile;
    try {
      profile = loadProfile(device.profile);
    } catch (err) {
      if (err instanceof ProfileError) {
        for (const p of err.problems) {
          problems.push({ path, message: `${p.line !== undefined ? `${err.file}:${p.line}:${p.column ?? 1}` : err.file}: ${p.path === '' ? '' : `${p.path}: `}${p.message}` });
        }
        return;
      }
      throw err;
    }
    if (profile.class !== device.class) {
      problems.push({ path, message: `profile "${profile.profile}" is for class ${profile.class}, but the device is class ${device.class}` });
      return;
    }
    const wanted = device.driver === 'mqtt' ? 'mqtt' : 'modbus';
    if (profile.transport !== wanted) {
      problems.push({ path, message: `profile "${profile.profile}" talks ${profile.transport}: use driver ${profile.transport === 'mqtt' ? 'mqtt' : 'profile'}` });
      return;
    }
    profiles.set(device.id, profile);
  });
  return { profiles, problems };
}
