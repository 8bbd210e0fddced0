import { createServer, Server } from 'node:http';
import { ConfigError } from '../src/config/env.schema';
import { Sandbox, startSandbox } from './sandbox';

const VENDORS = 7;

function listen(port: number): Promise<Server | undefined> {
  const server = createServer((_req, res) => res.end('another program'));
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const close = (server: Server) => new Promise((resolve) => server.close(resolve));

/** The first of VENDORS consecutive ports nothing listens on now. */
async function freeRange(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    const held = await Promise.all(Array.from({ length: VENDORS }, (_, i) => listen(base + i)));
    await Promise.all(held.filter((s): s is Server => !!s).map(close));
    if (held.every(Boolean)) return base;
  }
  throw new Error('no free range of ports');
}

describe('the sandbox on fixed ports', () => {
  const opened: Sandbox[] = [];
  let stranger: Server | undefined;

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    if (stranger) await close(stranger);
    stranger = undefined;
  });

  it('fails naming the port when another program holds one, and leaves none of its own listening', async () => {
    const base = await freeRange();
    stranger = await listen(base + 2);
    const failure = await startSandbox({ basePort: base, runpodExecution: 'simulated' }).catch((err: Error) => err);
    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as Error).message).toContain(`SANDBOX_PORT: port ${base + 2} (the runway emulator's`);
    // Closed again: a second start on the free ports before it gets them.
    await close(stranger!);
    stranger = undefined;
    const sandbox = await startSandbox({ basePort: base, runpodExecution: 'simulated' });
    opened.push(sandbox);
    expect([sandbox.hosted, sandbox.ports.openai, sandbox.ports.gemini]).toEqual([true, base, base + 6]);
  });

  it('moves that emulator to a free port when allowed to, and points the adapters at it', async () => {
    const base = await freeRange();
    stranger = await listen(base + 2);
    const sandbox = await startSandbox({ basePort: base, runpodExecution: 'simulated', fallBackToFreePorts: true });
    opened.push(sandbox);
    expect(sandbox.relocated).toEqual(['runway']);
    expect(sandbox.hosted).toBe(true);
    expect(sandbox.ports.runway).not.toBe(base + 2);
    expect([sandbox.ports.openai, sandbox.ports.stability, sandbox.ports.runpod]).toEqual([base, base + 1, base + 3]);
    expect(sandbox.env.RUNWAY_BASE_URL).toBe(`http://127.0.0.1:${sandbox.ports.runway}`);
    expect(sandbox.emulatorOrigins).toContain(`http://127.0.0.1:${sandbox.ports.runway}`);
    const res = await fetch(`${sandbox.env.RUNWAY_BASE_URL}/v1/tasks/none`);
    expect(res.headers.get('x-sandbox')).toBe('true');
  });

  it("shares another process's emulators on those ports, whether or not it may move", async () => {
    const base = await freeRange();
    const first = await startSandbox({ basePort: base, runpodExecution: 'simulated' });
    opened.push(first);
    const second = await startSandbox({ basePort: base, runpodExecution: 'simulated', fallBackToFreePorts: true });
    opened.push(second);
    expect([second.hosted, second.relocated, second.env]).toEqual([false, [], first.env]);
  });
});
