import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { TestApp } from './support/test-app';

const HOOK_MAX_BYTES = 4096;

describe('inbound flow hooks (POST /hooks/{hook_id})', () => {
  let t: TestApp;
  const whsec = `whsec_${randomBytes(32).toString('base64')}`;
  const rawSecret = 'a-raw-secret-of-the-sender-0123456789';

  /** A flow with a hook (one delay step: its runs wait, doing nothing); answers the hook's id and the flow's. */
  const hook = async (
    target: { secret?: string; requireKey?: boolean; eventIdHeader?: string; userId?: string } = {},
  ): Promise<{ hookId: string; flowId: string }> => {
    const trigger = {
      type: 'webhook',
      ...(target.secret ? { secret: target.secret } : {}),
      ...(target.requireKey ? { require_api_key: true } : {}),
      ...(target.eventIdHeader ? { event_id_header: target.eventIdHeader } : {}),
    };
    const res = await t.request('POST', '/api/v1/flows', {
      as: target.userId ?? 'alice',
      body: { name: `hook ${randomUUID()}`, trigger, steps: [{ id: 'wait', kind: 'delay', seconds: 3600 }] },
    });
    expect([res.status, res.body.message]).toEqual([201, undefined]);
    return { hookId: (res.body.hook_url as string).replace('/hooks/', ''), flowId: res.body.id as string };
  };

  const post = (hookId: string, body: string, headers: Record<string, string> = {}) =>
    t.request('POST', `/hooks/${hookId}`, {
      token: null,
      rawBody: body,
      headers: { 'content-type': 'application/json', ...headers },
    });

  beforeAll(async () => {
    t = await TestApp.start({
      env: { HOOK_MAX_BYTES: String(HOOK_MAX_BYTES) },
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers 202 {run_id} at once and starts one run with the body as its trigger', async () => {
    const { hookId, flowId } = await hook();
    const started = Date.now();
    const res = await post(hookId, JSON.stringify({ text: 'hello', n: 2 }));
    const took = Date.now() - started;
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ run_id: expect.any(String) });
    expect(took).toBeLessThan(1000);
    expect(await runsOf(flowId)).toEqual([
      { flowId, trigger: { text: 'hello', n: 2 }, source: 'webhook', dedupeKey: null, runId: res.body.run_id },
    ]);
  });

  it('parses form-urlencoded bodies to an object and text bodies to a string', async () => {
    const { hookId, flowId } = await hook();
    const form = await post(hookId, 'a=1&b=two+words&a=3', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(202);
    const text = await post(hookId, 'just a line', { 'content-type': 'text/plain; charset=utf-8' });
    expect(text.status).toBe(202);
    expect((await runsOf(flowId)).map((r) => r.trigger)).toEqual([{ a: ['1', '3'], b: 'two words' }, 'just a line']);
    const bad = await post(hookId, '{"broken', {});
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/^body: malformed JSON/);
    const xml = await post(hookId, '<a/>', { 'content-type': 'application/xml' });
    expect(xml.status).toBe(415);
    expect(await runsOf(flowId)).toHaveLength(2);
  });

  it('answers 404 hook_not_found for an unknown hook', async () => {
    const res = await post('no-such-hook', '{}');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: 'hook_not_found', message: 'hook no-such-hook not found' });
  });

  it('verifies Standard Webhooks signatures (whsec_ and raw secrets): good 202, bad or missing 401 naming the header', async () => {
    for (const secret of [whsec, rawSecret]) {
      const { hookId, flowId } = await hook({ secret });
      const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
      const body = JSON.stringify({ event: 'paid' });
      const id = `msg_${randomUUID()}`;
      const now = new Date();
      const signature = new Webhook(key, { format: 'raw' }).sign(id, now, body);
      const headers = { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)) };

      const good = await post(hookId, body, { ...headers, 'webhook-signature': signature });
      expect(good.status).toBe(202);

      const tampered = await post(hookId, body.replace('paid', 'free'), {
        ...headers,
        'webhook-id': `${id}-2`,
        'webhook-signature': signature,
      });
      expect(tampered.status).toBe(401);
      expect(tampered.body).toMatchObject({ code: 'unauthorized', header: 'webhook-signature' });
      expect(tampered.body.message).toMatch(/^webhook-signature: /);

      const unsigned = await post(hookId, body);
      expect(unsigned.status).toBe(401);
      expect(unsigned.body.message).toMatch(/^webhook-signature: this hook needs a signature/);

      const old = await post(hookId, body, {
        ...headers,
        'webhook-timestamp': '1000000000',
        'webhook-signature': signature,
      });
      expect(old.status).toBe(401);
      expect(old.body.header).toBe('webhook-timestamp');
      expect(await runsOf(flowId)).toHaveLength(1);
    }
  });

  it('verifies sha256=<hex> HMACs in X-Hub-Signature-256 and X-Signature', async () => {
    const { hookId, flowId } = await hook({ secret: rawSecret });
    const body = JSON.stringify({ ref: 'main' });
    const hex = createHmac('sha256', rawSecret).update(body).digest('hex');
    expect((await post(hookId, body, { 'x-hub-signature-256': `sha256=${hex}` })).status).toBe(202);
    expect((await post(hookId, body, { 'x-signature': `sha256=${hex}` })).status).toBe(202);
    const wrong = await post(hookId, `${body} `, { 'x-signature': `sha256=${hex}` });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ header: 'x-signature', message: 'x-signature: does not match the body' });
    const malformed = await post(hookId, body, { 'x-hub-signature-256': hex });
    expect(malformed.status).toBe(401);
    expect(malformed.body.message).toMatch(/^x-hub-signature-256: must be sha256=/);
    expect(await runsOf(flowId)).toHaveLength(2);
  });

  it("takes only the flow owner's API key or token when the flow requires a key", async () => {
    const admin = t.token('root', { admin: true });
    const keyOf = async (owner: string) =>
      (await t.request('POST', '/api/v1/api-keys', { token: admin, body: { owner, name: 'hooks' } })).body
        .key as string;
    const [mine, theirs] = [await keyOf('dana'), await keyOf('erin')];
    const { hookId, flowId } = await hook({ requireKey: true, userId: 'dana' });

    const none = await post(hookId, '{}');
    expect(none.status).toBe(401);
    expect(none.body.message).toMatch(/API key/);
    expect((await post(hookId, '{}', { 'x-api-key': 'mt_not-a-key' })).status).toBe(401);
    const other = await post(hookId, '{}', { 'x-api-key': theirs });
    expect(other.status).toBe(403);
    expect((await post(hookId, '{}', { authorization: `Bearer ${t.token('erin')}` })).status).toBe(403);

    expect((await post(hookId, '{}', { 'x-api-key': mine })).status).toBe(202);
    expect((await post(hookId, '{}', { authorization: `Bearer ${t.token('dana')}` })).status).toBe(202);
    expect(await runsOf(flowId)).toHaveLength(2);
  });

  it('refuses a body over HOOK_MAX_BYTES with 413 naming the limit, and starts nothing', async () => {
    const { hookId, flowId } = await hook();
    const big = JSON.stringify({ pad: 'x'.repeat(HOOK_MAX_BYTES) });
    const res = await post(hookId, big);
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: 'payload_too_large', limit_bytes: HOOK_MAX_BYTES });
    expect(res.body.message).toContain('HOOK_MAX_BYTES');
    expect(await runsOf(flowId)).toHaveLength(0);
    // Just under the limit passes.
    expect((await post(hookId, JSON.stringify({ pad: 'x'.repeat(HOOK_MAX_BYTES - 20) }))).status).toBe(202);
  });

  it("answers a repeated sender event id with the first run: 200 and the same body (webhook-id or the flow's header)", async () => {
    const { hookId, flowId } = await hook();
    const first = await post(hookId, '{"n":1}', { 'webhook-id': 'evt_1' });
    const again = await post(hookId, '{"n":1}', { 'webhook-id': 'evt_1' });
    const other = await post(hookId, '{"n":2}', { 'webhook-id': 'evt_2' });
    expect([first.status, again.status, other.status]).toEqual([202, 200, 202]);
    expect(again.body).toEqual(first.body);
    expect(other.body.run_id).not.toBe(first.body.run_id);
    expect((await runsOf(flowId)).map((r) => r.dedupeKey)).toEqual(['hook:evt_1', 'hook:evt_2']);

    const custom = await hook({ eventIdHeader: 'X-GitHub-Delivery' });
    const a = await post(custom.hookId, '{}', { 'x-github-delivery': 'd-1', 'webhook-id': 'ignored-1' });
    const b = await post(custom.hookId, '{}', { 'x-github-delivery': 'd-1', 'webhook-id': 'ignored-2' });
    expect([a.status, b.status]).toEqual([202, 200]);
    expect(b.body.run_id).toBe(a.body.run_id);
    expect((await runsOf(custom.flowId)).map((r) => r.dedupeKey)).toEqual(['hook:d-1']);
  });

  it('answers the 101st request of a minute to one hook with 429 and Retry-After; other hooks go on', async () => {
    const { hookId, flowId } = await hook();
    for (let i = 0; i < 100; i++) {
      const res = await post(hookId, '{}');
      if (res.status !== 202) throw new Error(`request ${i + 1}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    const over = await post(hookId, '{}');
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ code: 'rate_limited', limit: 100 });
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await runsOf(flowId)).toHaveLength(100);
    expect((await post((await hook()).hookId, '{}')).status).toBe(202);
  });

  it('makes 500 hooks posted at once over five flows into 500 runs exactly once; a resend of 100 makes none', async () => {
    const flows = await Promise.all(Array.from({ length: 5 }, () => hook()));
    const events = Array.from({ length: 500 }, (_, i) => ({ ...flows[i % 5], id: `burst-${i}` }));
    const send = (e: { hookId: string; id: string }) =>
      post(e.hookId, JSON.stringify({ n: e.id }), { 'webhook-id': e.id });
    const answers = await Promise.all(events.map(send));
    expect(answers.filter((a) => a.status === 202)).toHaveLength(500);
    const runIds = answers.map((a) => a.body.run_id as string);
    expect(new Set(runIds).size).toBe(500);
    const counts = await Promise.all(flows.map(async (f) => (await runsOf(f.flowId)).length));
    expect(counts).toEqual([100, 100, 100, 100, 100]);
    // The sender retries 100 of them: the same runs or, past the hook's minute, 429; never a new run.
    const resent = await Promise.all(events.slice(0, 100).map(send));
    for (const [i, answer] of resent.entries()) {
      if (answer.status === 200) expect(answer.body.run_id).toBe(runIds[i]);
      else expect(answer.status).toBe(429);
    }
    const after = await Promise.all(flows.map(async (f) => (await runsOf(f.flowId)).length));
    expect(after).toEqual(counts);
    // Each hook had its 100 of the minute: a new event is refused.
    const extra = await post(flows[0].hookId, '{}', { 'webhook-id': 'one-more' });
    expect(extra.status).toBe(429);
    expect(Number(extra.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  }, 60000);

  /** The flow's runs, as the table holds them, oldest first. */
  async function runsOf(flowId: string) {
    const rows = await t.dataSource.query<
      { id: string; flow_id: string; trigger: unknown; source: string; dedupe_key: string | null }[]
    >(`SELECT id, flow_id, trigger, source, dedupe_key FROM flow_runs WHERE flow_id = $1 ORDER BY created_at, id`, [
      flowId,
    ]);
    return rows.map((r) => ({
      flowId: r.flow_id,
      trigger: r.trigger,
      source: r.source,
      dedupeKey: r.dedupe_key,
      runId: r.id,
    }));
  }
});
