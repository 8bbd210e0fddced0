import {
  EXPRESSION_MAX_CHARS,
  evaluateExpression,
  ExpressionError,
  expressionProblem,
  renderTemplate,
  templateProblems,
} from './expressions';

const context = {
  trigger: { text: 'hello world', n: 3, list: [1, 2, 3] },
  steps: { subs: { status: 'completed', output: { srt: '1\n00:00:00,000 --> 00:00:01,000\nhi' } } },
  run: { id: 'run-1', flow_id: 'flow-1', version: 2 },
};

describe('flow expressions (JSONata over the run context)', () => {
  it('evaluates over the context: conditions, paths and built-ins', async () => {
    await expect(evaluateExpression("steps.subs.status = 'completed'", context)).resolves.toBe(true);
    await expect(evaluateExpression('$contains(trigger.text, "world")', context)).resolves.toBe(true);
    await expect(evaluateExpression('$sum(trigger.list) * trigger.n', context)).resolves.toBe(18);
    await expect(evaluateExpression('steps.nothing.output', context)).resolves.toBeUndefined();
    await expect(evaluateExpression('trigger.list[$ > 1]', context)).resolves.toEqual([2, 3]);
  });

  it('renders templates: a whole {{ expr }} keeps its type, inside text it is interpolated', async () => {
    await expect(
      renderTemplate(
        {
          text: '{{ trigger.text }}',
          n: '{{ trigger.n }}',
          list: ['{{ trigger.list }}', 'first {{ trigger.list[0] }} of {{ trigger.list }}'],
          missing: 'x{{ trigger.nothing }}y',
          plain: 'no braces',
          number: 7,
        },
        context,
      ),
    ).resolves.toEqual({
      text: 'hello world',
      n: 3,
      list: [[1, 2, 3], 'first 1 of [1,2,3]'],
      missing: 'xy',
      plain: 'no braces',
      number: 7,
    });
  });

  it('sees nothing but the context: no globals of the host', async () => {
    await expect(evaluateExpression('$process', context)).resolves.toBeUndefined();
    await expect(evaluateExpression('$require', context)).resolves.toBeUndefined();
    await expect(evaluateExpression('constructor', context)).resolves.toBeUndefined();
  });

  it('stops a runaway recursion and an evaluation that runs too long, naming why', async () => {
    const recursion = evaluateExpression('( $f := function($x){ 1 + $f($x + 1) }; $f(0) )', context);
    await expect(recursion).rejects.toBeInstanceOf(ExpressionError);
    await expect(recursion).rejects.toMatchObject({ code: 'too_deep' });
    const slow = evaluateExpression('$count([1..20000].( $x := $; [1..200].($ * $x) ))', context);
    await expect(slow).rejects.toMatchObject({ code: 'timeout' });
  });

  it('counts the steps an evaluation takes, not the time the process spends on other things', async () => {
    const evaluation = evaluateExpression('$sum([1..2000].($ * 2))', context);
    // Mid-evaluation, the thread is held for 600 ms (as a busy host's scheduler, or another run, would hold it).
    await Promise.resolve().then(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600));
    await expect(evaluation).resolves.toBe(4002000);
  });

  it('refuses a result over 1 MiB and an expression over its length', async () => {
    await expect(evaluateExpression('$pad("", 2000000, "x")', context)).rejects.toMatchObject({
      code: 'too_large',
    });
    await expect(evaluateExpression('1 + '.repeat(EXPRESSION_MAX_CHARS), context)).rejects.toMatchObject({
      code: 'too_large',
    });
  });

  it('names the problems of expressions without running them', () => {
    expect(expressionProblem('steps.a.status = ')).toMatch(/invalid expression/);
    expect(expressionProblem('steps.a.status = "ok"')).toBeNull();
    expect(templateProblems({ a: '{{ foo( }}', b: ['ok {{ x }}', 'bad {{ ) }}'] })).toEqual([
      expect.stringMatching(/^a: invalid expression/),
      expect.stringMatching(/^b\[1\]: invalid expression/),
    ]);
  });
});
