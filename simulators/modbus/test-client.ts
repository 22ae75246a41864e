/** Helpers for tests: an independent Modbus client (modbus-serial) and error classification. */
import ModbusSerial from 'modbus-serial';

// modbus-serial is CommonJS: under NodeNext the default import is module.exports, whose `default` is the class.
const ModbusRTU = ModbusSerial.default;
export type Client = InstanceType<typeof ModbusRTU>;

export async function tcpClient(host: string, port: number, unitId: number, timeoutMs = 500): Promise<Client> {
  const client = new ModbusRTU();
  await client.connectTCP(host, { port });
  client.setID(unitId);
  client.setTimeout(timeoutMs);
  return client;
}

export async function rtuClient(path: string, baudRate: number, unitId: number, timeoutMs = 500): Promise<Client> {
  const client = new ModbusRTU();
  await client.connectRTUBuffered(path, { baudRate });
  client.setID(unitId);
  client.setTimeout(timeoutMs);
  return client;
}

/** A Modbus ASCII client (modbus-serial's AsciiPort), e.g. for an ABL charger at 38400 8E1. */
export async function asciiClient(path: string, baudRate: number, unitId: number, timeoutMs = 500): Promise<Client> {
  const client = new ModbusRTU();
  await client.connectAsciiSerial(path, { baudRate, parity: 'even', dataBits: 8, stopBits: 1 });
  client.setID(unitId);
  client.setTimeout(timeoutMs);
  return client;
}

export async function closeClient(client: Client): Promise<void> {
  if (!client.isOpen) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 200);
    client.close(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** What a failed request looked like to the client. */
export async function failure(p: Promise<unknown>): Promise<{ modbusCode?: number; errno?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { modbusCode?: number; errno?: string; message?: string };
    const out: { modbusCode?: number; errno?: string; message: string } = { message: String(err.message ?? e) };
    if (err.modbusCode !== undefined) out.modbusCode = err.modbusCode;
    if (err.errno !== undefined) out.errno = String(err.errno);
    return out;
  }
  throw new Error('request succeeded but a failure was expected');
}
