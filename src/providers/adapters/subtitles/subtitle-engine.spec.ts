import {
  buildCues,
  cuesFromSegments,
  renderSubtitles,
  splitSentences,
  SUBTITLE_DEFAULTS,
  SubtitleCue,
  SubtitleInputError,
  SubtitleTimingOptions,
} from './subtitle-engine';

const chars = (text: string): number => Array.from(text).length;
const cueText = (cue: SubtitleCue): string => cue.lines.join(' ');

/** Small deterministic PRNG so the generated texts are the same on every run. */
function makeRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const WORDS = (
  'the quick subtitle engine breaks lines at natural points and because reading speed matters for viewers olá ' +
  'coração não é fácil that which extraordinarily a of but mas porque niño über café 3.14 twenty I you ' +
  'internationalisation'
).split(' ');

/** Paragraph-like text made of sentences; words stay within 23 characters including punctuation. */
function generateText(random: () => number, wordCount: number): string {
  const parts: string[] = [];
  let startOfSentence = true;
  for (let i = 0; i < wordCount; i++) {
    let word = WORDS[Math.floor(random() * WORDS.length)];
    if (startOfSentence) word = word[0].toUpperCase() + word.slice(1);
    startOfSentence = false;
    const roll = random();
    if (roll < 0.08) word += ',';
    else if (roll < 0.13) {
      word += ['.', '?', '!', '?!', '...'][Math.floor(random() * 5)];
      startOfSentence = true;
    }
    parts.push(word);
  }
  return parts.join(random() < 0.5 ? ' ' : '  \n ') + '.';
}

describe('splitSentences', () => {
  it('splits on sentence punctuation and keeps it with the sentence', () => {
    expect(splitSentences('Hello world. How are you? I am fine!')).toEqual([
      'Hello world.',
      'How are you?',
      'I am fine!',
    ]);
  });

  it('does not split after common English abbreviations', () => {
    expect(
      splitSentences('Mr. Smith met Dr. Jones at St. Mary’s. They talked about cats vs. dogs, etc. for hours.'),
    ).toEqual(['Mr. Smith met Dr. Jones at St. Mary’s.', 'They talked about cats vs. dogs, etc. for hours.']);
    expect(splitSentences('Use a tool, e.g. Subtitle Edit. It works, i.e. Most of the time.')).toEqual([
      'Use a tool, e.g. Subtitle Edit.',
      'It works, i.e. Most of the time.',
    ]);
  });

  it('does not split after Portuguese and Spanish abbreviations', () => {
    expect(splitSentences('A Sra. Silva chegou. O Sr. Souza e a Dra. Lima também. La Sra. García llegó.')).toEqual([
      'A Sra. Silva chegou.',
      'O Sr. Souza e a Dra. Lima também.',
      'La Sra. García llegó.',
    ]);
  });

  it('does not split after single capital initials', () => {
    expect(splitSentences('J. R. R. Tolkien wrote books. He died in 1973.')).toEqual([
      'J. R. R. Tolkien wrote books.',
      'He died in 1973.',
    ]);
  });

  it('does not split inside numbers', () => {
    expect(splitSentences('Pi is about 3.14 today. The town has 1.000 people.')).toEqual([
      'Pi is about 3.14 today.',
      'The town has 1.000 people.',
    ]);
  });

  it('treats "?!" and ellipses as one terminator', () => {
    expect(splitSentences('Really?! I did not know... Tell me more. Wait… What?')).toEqual([
      'Really?!',
      'I did not know...',
      'Tell me more.',
      'Wait…',
      'What?',
    ]);
  });

  it('keeps closing quotes and brackets with the sentence', () => {
    expect(splitSentences('He said "Stop." Then he left. (It was late.) Nobody followed.')).toEqual([
      'He said "Stop."',
      'Then he left.',
      '(It was late.)',
      'Nobody followed.',
    ]);
  });

  it('normalises whitespace and ends sentences at blank lines', () => {
    expect(splitSentences('  Hello \t  world\n\n How   are\nyou? ')).toEqual(['Hello world', 'How are you?']);
  });

  it('handles accented and CJK text', () => {
    expect(splitSentences('Olá! Você está bem? Está ótimo.')).toEqual(['Olá!', 'Você está bem?', 'Está ótimo.']);
    expect(splitSentences('今日は晴れです。明日は雨でしょう！')).toEqual(['今日は晴れです。', '明日は雨でしょう！']);
  });

  it('returns no sentences for blank text', () => {
    expect(splitSentences(' \n\t ')).toEqual([]);
  });
});

describe('buildCues', () => {
  it('rejects empty or whitespace-only text', () => {
    expect(() => buildCues('')).toThrow(SubtitleInputError);
    expect(() => buildCues(' \n\t  \n')).toThrow(SubtitleInputError);
  });

  it('rejects invalid options', () => {
    expect(() => buildCues('Hi.', { maxCharsPerLine: 0 })).toThrow(SubtitleInputError);
    expect(() => buildCues('Hi.', { charsPerSecond: -1 })).toThrow(SubtitleInputError);
    expect(() => buildCues('Hi.', { minDurationMs: 5000, maxDurationMs: 1000 })).toThrow(SubtitleInputError);
  });

  it('follows the style guide without options: from 0, 17 characters a second, 1 s at least, 83 ms apart', () => {
    const [hi, sweet] = buildCues('Hi. Short and sweet.');
    // Three characters read in 176 ms: shown for the minimum second.
    expect(hi).toMatchObject({ startMs: 0, endMs: 1000 });
    expect(sweet.startMs - hi.endMs).toBe(83);

    const [long] = buildCues(
      'A sentence long enough to need two lines of text on the screen, and then some more words so that it runs past.',
    );
    expect(long.lines).toEqual(['A sentence long enough to need', 'two lines of text on the screen,']);
    expect(long.endMs - long.startMs).toBe(Math.round((63 * 1000) / 17));
  });

  it('never puts more than two lines of 42 characters on screen without options', () => {
    const cues = buildCues(`${'x'.repeat(150)}.`);
    expect(cues.length).toBeGreaterThan(1);
    for (const cue of cues) {
      expect(cue.lines.length).toBeLessThanOrEqual(2);
      for (const line of cue.lines) expect(chars(line)).toBeLessThanOrEqual(42);
    }
    expect(cues.flatMap((c) => c.lines).join('')).toBe(`${'x'.repeat(150)}.`);
  });

  it('keeps layout and timing rules for generated paragraphs', () => {
    const optionSets: SubtitleTimingOptions[] = [
      {},
      { maxCharsPerLine: 32 },
      { maxCharsPerLine: 24, maxLines: 3, charsPerSecond: 12, gapMs: 0 },
      { maxCharsPerLine: 24, maxLines: 1, minDurationMs: 500, maxDurationMs: 2000, startMs: 1234 },
      { charsPerSecond: 25, maxDurationMs: 3000 },
    ];
    const random = makeRandom(42);
    for (let sample = 0; sample < 12; sample++) {
      const text = generateText(random, 40 + Math.floor(random() * 120));
      const normalised = text.replace(/\s+/g, ' ');
      for (const options of optionSets) {
        const o = { ...SUBTITLE_DEFAULTS, ...options };
        const maxChunkChars = Math.floor((o.maxDurationMs * o.charsPerSecond) / 1000);
        const cues = buildCues(text, options);

        expect(cues.flatMap((cue) => cue.lines).join(' ')).toBe(normalised);
        expect(cues[0].startMs).toBe(o.startMs);
        cues.forEach((cue, i) => {
          expect(cue.index).toBe(i + 1);
          expect(cue.lines.length).toBeGreaterThanOrEqual(1);
          expect(cue.lines.length).toBeLessThanOrEqual(o.maxLines);
          for (const line of cue.lines) {
            expect(chars(line)).toBeLessThanOrEqual(o.maxCharsPerLine);
            expect(line).toBe(line.trim());
            expect(line).not.toBe('');
          }
          const duration = cue.endMs - cue.startMs;
          expect(duration).toBeGreaterThanOrEqual(o.minDurationMs);
          expect(duration).toBeLessThanOrEqual(o.maxDurationMs);
          const expected = Math.round((chars(cueText(cue)) * 1000) / o.charsPerSecond);
          expect(duration).toBe(Math.min(o.maxDurationMs, Math.max(o.minDurationMs, expected)));
          if (cue.lines.length > 1 || cue.lines[0].includes(' ')) {
            expect(chars(cueText(cue))).toBeLessThanOrEqual(maxChunkChars);
          }
          if (i > 0) {
            expect(cue.startMs).toBeGreaterThan(cues[i - 1].startMs);
            expect(cue.startMs - cues[i - 1].endMs).toBeGreaterThanOrEqual(o.gapMs);
          }
        });
      }
    }
  });

  it('breaks lines evenly instead of greedily', () => {
    const [cue] = buildCues('The quick brown fox jumps over the lazy dog near the river bank.');
    expect(cue.lines).toEqual(['The quick brown fox jumps over', 'the lazy dog near the river bank.']);
  });

  it('prefers a line break after punctuation', () => {
    const [cue] = buildCues('When the rain finally stopped, everyone went outside to play.');
    expect(cue.lines).toEqual(['When the rain finally stopped,', 'everyone went outside to play.']);
  });

  it('makes the bottom line longer when two breaks are equally balanced', () => {
    const [cue] = buildCues('Alpha Bravo Delta', { maxCharsPerLine: 12 });
    expect(cue.lines).toEqual(['Alpha', 'Bravo Delta']);
  });

  it('keeps a short sentence on one line', () => {
    expect(buildCues('Short and sweet.')[0].lines).toEqual(['Short and sweet.']);
  });

  it('splits long sentences after commas or before conjunctions', () => {
    const afterComma = buildCues(
      'I wanted to go to the party last night with all of my friends, but I was far too tired after a very long day.',
    );
    expect(afterComma).toHaveLength(2);
    expect(afterComma[0].lines[afterComma[0].lines.length - 1]).toMatch(/friends,$/);
    expect(afterComma[1].lines[0]).toMatch(/^but /);

    const beforeConjunction = buildCues(
      'The committee reviewed every single application very carefully because the funding for this year was limited.',
    );
    expect(beforeConjunction).toHaveLength(2);
    expect(beforeConjunction[1].lines[0]).toMatch(/^because /);
  });

  it('starts a new cue for every sentence', () => {
    const cues = buildCues('Hi. Yes. No way!');
    expect(cues.map((cue) => cue.lines)).toEqual([['Hi.'], ['Yes.'], ['No way!']]);
  });

  it('splits sentences that cannot be read within the maximum duration', () => {
    const text =
      'This particular sentence is written to be long enough that a short maximum duration forces it into many cues.';
    const cues = buildCues(text, { maxDurationMs: 2000 });
    expect(cues.length).toBeGreaterThan(buildCues(text).length);
    for (const cue of cues) {
      expect(chars(cueText(cue))).toBeLessThanOrEqual(34);
      expect(cue.endMs - cue.startMs).toBeLessThanOrEqual(2000);
    }
  });

  it('hard-splits only words that are longer than a line', () => {
    const word = 'x'.repeat(100);
    const cues = buildCues(`Look: ${word} done.`);
    const lines = cues.flatMap((cue) => cue.lines);
    for (const line of lines) expect(chars(line)).toBeLessThanOrEqual(42);
    expect(lines.join('').replace(/ /g, '')).toBe(`Look:${word}done.`);
    expect(lines.some((line) => /Look:|done\./.test(line) && /^[x]+$/.test(line))).toBe(false);
  });

  it('splits long CJK runs by character count without crashing', () => {
    const text = '这是一个很长的句子，我们需要把它分成几个部分，因为它太长了，不能放在一个字幕里面。'.repeat(3);
    const cues = buildCues(text);
    expect(cues.length).toBeGreaterThan(1);
    for (const cue of cues) {
      expect(cue.lines.length).toBeLessThanOrEqual(2);
      for (const line of cue.lines) expect(chars(line)).toBeLessThanOrEqual(42);
    }
    expect(cues.flatMap((cue) => cue.lines).join('')).toBe(text);
  });

  describe('timing', () => {
    it('gives a 17-character cue exactly 1000 ms at the default reading speed', () => {
      const text = 'Hello there, Bob!';
      expect(text).toHaveLength(17);
      expect(buildCues(text)).toEqual([{ index: 1, startMs: 0, endMs: 1000, lines: [text] }]);
    });

    it('gives a 51-character cue exactly 3000 ms', () => {
      const text = 'Subtitles should be easy to read at a normal speed.';
      expect(text).toHaveLength(51);
      const cues = buildCues(text);
      expect(cues).toHaveLength(1);
      expect(cues[0].endMs - cues[0].startMs).toBe(3000);
    });

    it('clamps short cues to the minimum duration', () => {
      expect(buildCues('Hi.')).toEqual([{ index: 1, startMs: 0, endMs: 1000, lines: ['Hi.'] }]);
      expect(buildCues('Hi.', { minDurationMs: 833 })[0].endMs).toBe(833);
    });

    it('clamps an unsplittable word to the maximum duration', () => {
      const cues = buildCues('Incomprehensibilities.', { charsPerSecond: 1, maxDurationMs: 5000 });
      expect(cues).toHaveLength(1);
      expect(cues[0].endMs - cues[0].startMs).toBe(5000);
    });

    it('starts at startMs and separates cues by exactly gapMs', () => {
      const cues = buildCues('One. Two. Three.', { startMs: 5000, gapMs: 200 });
      expect(cues.map((cue) => [cue.startMs, cue.endMs])).toEqual([
        [5000, 6000],
        [6200, 7200],
        [7400, 8400],
      ]);
      const defaults = buildCues('One. Two.');
      expect(defaults[1].startMs - defaults[0].endMs).toBe(83);
    });

    it('is deterministic', () => {
      const text = generateText(makeRandom(7), 200);
      expect(buildCues(text)).toEqual(buildCues(text));
    });
  });
});

describe('cuesFromSegments', () => {
  it('keeps the given times and wraps the text', () => {
    const cues = cuesFromSegments([
      { start: 1, end: 2.5, text: 'Hello there.' },
      { start: 2.5, end: 6, text: 'This line is long enough that it has to be wrapped onto two lines.' },
      { start: 3723.456, end: 3725, text: 'Bye.' },
    ]);
    expect(cues).toEqual([
      { index: 1, startMs: 1000, endMs: 2500, lines: ['Hello there.'] },
      {
        index: 2,
        startMs: 2500,
        endMs: 6000,
        lines: ['This line is long enough that it', 'has to be wrapped onto two lines.'],
      },
      { index: 3, startMs: 3723456, endMs: 3725000, lines: ['Bye.'] },
    ]);
  });

  it('shares a segment proportionally between the cues of a long text', () => {
    const text =
      'The first part of this text is here, and it keeps going for quite a while. ' +
      'The second part follows right after it and also goes on for some time before it ends.';
    const cues = cuesFromSegments([{ start: 10, end: 20, text }]);
    expect(cues.length).toBeGreaterThan(1);
    expect(cues[0].startMs).toBe(10000);
    expect(cues[cues.length - 1].endMs).toBe(20000);
    expect(cues.flatMap((cue) => cue.lines).join(' ')).toBe(text);
    const total = cues.reduce((sum, cue) => sum + chars(cueText(cue)), 0);
    cues.forEach((cue, i) => {
      if (i > 0) expect(cue.startMs).toBe(cues[i - 1].endMs);
      expect(Math.abs(cue.endMs - cue.startMs - (10000 * chars(cueText(cue))) / total)).toBeLessThanOrEqual(1);
      expect(cue.lines.length).toBeLessThanOrEqual(2);
      for (const line of cue.lines) expect(chars(line)).toBeLessThanOrEqual(42);
    });
  });

  it('rejects invalid segments', () => {
    const bad: Array<Parameters<typeof cuesFromSegments>[0]> = [
      [{ start: 2, end: 2, text: 'Zero length.' }],
      [{ start: 3, end: 2, text: 'Backwards.' }],
      [{ start: -1, end: 2, text: 'Negative.' }],
      [{ start: Number.NaN, end: 2, text: 'Not a number.' }],
      [{ start: 0, end: 1, text: '   ' }],
      [
        { start: 0, end: 2, text: 'First.' },
        { start: 1.5, end: 3, text: 'Overlapping.' },
      ],
      [
        { start: 5, end: 6, text: 'Later.' },
        { start: 1, end: 2, text: 'Earlier.' },
      ],
      [],
    ];
    for (const segments of bad) expect(() => cuesFromSegments(segments)).toThrow(SubtitleInputError);
  });

  it('accepts segments that touch', () => {
    const cues = cuesFromSegments([
      { start: 0, end: 1, text: 'One.' },
      { start: 1, end: 2, text: 'Two.' },
    ]);
    expect(cues.map((cue) => [cue.startMs, cue.endMs])).toEqual([
      [0, 1000],
      [1000, 2000],
    ]);
  });
});

describe('renderSubtitles', () => {
  const cues: SubtitleCue[] = [
    { index: 1, startMs: 1000, endMs: 2500, lines: ['Hello there.', 'How are you?'] },
    { index: 2, startMs: 3723456, endMs: 3725000, lines: ['Fine, thanks!'] },
  ];

  it('renders SRT', () => {
    expect(renderSubtitles('srt', cues)).toBe(
      '1\n00:00:01,000 --> 00:00:02,500\nHello there.\nHow are you?\n\n' +
        '2\n01:02:03,456 --> 01:02:05,000\nFine, thanks!\n\n',
    );
  });

  it('renders WebVTT with a language header', () => {
    expect(renderSubtitles('vtt', cues, { language: 'en' })).toBe(
      'WEBVTT\nLanguage: en\n\n' +
        '00:00:01.000 --> 00:00:02.500\nHello there.\nHow are you?\n\n' +
        '01:02:03.456 --> 01:02:05.000\nFine, thanks!\n\n',
    );
    expect(renderSubtitles('vtt', cues)).toMatch(/^WEBVTT\n\n00:00:01\.000 --> /);
  });

  it('escapes WebVTT cue text so markup and "-->" cannot leak through', () => {
    const output = renderSubtitles('vtt', [
      { index: 1, startMs: 0, endMs: 1000, lines: ['Tom & Jerry <3', 'a --> b'] },
    ]);
    expect(output).toBe('WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nTom &amp; Jerry &lt;3\na --&gt; b\n\n');
    const textLines = output
      .split('\n')
      .filter((line) => line !== 'WEBVTT' && !/^\d\d:\d\d:\d\d\.\d{3} --> /.test(line));
    for (const line of textLines) expect(line).not.toContain('-->');
  });

  it('renders ASS', () => {
    expect(renderSubtitles('ass', cues, { title: 'Demo', language: 'pt' })).toBe(
      [
        '[Script Info]',
        '; Language: pt',
        'Title: Demo',
        'ScriptType: v4.00+',
        'PlayResX: 1920',
        'PlayResY: 1080',
        'WrapStyle: 0',
        'ScaledBorderAndShadow: yes',
        '',
        '[V4+ Styles]',
        'Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, ' +
          'Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, ' +
          'MarginL, MarginR, MarginV, Encoding',
        'Style: Default,Arial,64,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,3,0,2,60,60,60,1',
        '',
        '[Events]',
        'Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text',
        'Dialogue: 0,0:00:01.00,0:00:02.50,Default,,0,0,0,,Hello there.\\NHow are you?',
        'Dialogue: 0,1:02:03.45,1:02:05.00,Default,,0,0,0,,Fine, thanks!',
        '',
      ].join('\n'),
    );
  });

  it('escapes braces and converts raw newlines in ASS text', () => {
    const output = renderSubtitles('ass', [
      { index: 1, startMs: 0, endMs: 1005, lines: ['{\\b1}bold', 'raw\nnewline'] },
    ]);
    expect(output).toContain('Title: Untitled\n');
    expect(output).not.toContain('Language');
    expect(output.endsWith('Dialogue: 0,0:00:00.00,0:00:01.00,Default,,0,0,0,,\\{\\b1\\}bold\\Nraw\\Nnewline\n')).toBe(
      true,
    );
  });

  it('formats 3723.456 s consistently in all formats', () => {
    const timed = cuesFromSegments([{ start: 3723.456, end: 3724.5, text: 'Time check.' }]);
    expect(renderSubtitles('srt', timed)).toContain('01:02:03,456 --> 01:02:04,500');
    expect(renderSubtitles('vtt', timed)).toContain('01:02:03.456 --> 01:02:04.500');
    expect(renderSubtitles('ass', timed)).toContain('Dialogue: 0,1:02:03.45,1:02:04.50,Default');
  });

  it('formats times up to 99:59:59.999', () => {
    const late: SubtitleCue[] = [{ index: 1, startMs: 359_999_000, endMs: 359_999_999, lines: ['Late.'] }];
    expect(renderSubtitles('srt', late)).toBe('1\n99:59:59,000 --> 99:59:59,999\nLate.\n\n');
    expect(renderSubtitles('vtt', late)).toContain('99:59:59.000 --> 99:59:59.999\n');
    expect(renderSubtitles('ass', late)).toContain('Dialogue: 0,99:59:59.00,99:59:59.99,Default');
  });

  it('never lets a blank line break the SRT structure', () => {
    const output = renderSubtitles('srt', [
      { index: 7, startMs: 0, endMs: 1000, lines: ['First', '', 'Second\n\nThird'] },
    ]);
    expect(output).toBe('1\n00:00:00,000 --> 00:00:01,000\nFirst\nSecond\nThird\n\n');
  });

  it('renders cues produced by buildCues', () => {
    expect(renderSubtitles('srt', buildCues('Hi. Hello there, Bob!'))).toBe(
      '1\n00:00:00,000 --> 00:00:01,000\nHi.\n\n2\n00:00:01,083 --> 00:00:02,083\nHello there, Bob!\n\n',
    );
  });

  it('rejects unknown formats and invalid times', () => {
    expect(() => renderSubtitles('txt' as never, cues)).toThrow(SubtitleInputError);
    expect(() => renderSubtitles('srt', [{ index: 1, startMs: -5, endMs: 100, lines: ['x'] }])).toThrow(
      SubtitleInputError,
    );
    expect(() => renderSubtitles('srt', [{ index: 1, startMs: 500, endMs: 100, lines: ['x'] }])).toThrow(
      SubtitleInputError,
    );
  });
});

describe('SubtitleInputError', () => {
  it('is an Error with its own name', () => {
    const error = new SubtitleInputError('bad input');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('SubtitleInputError');
    expect(error.message).toBe('bad input');
  });
});
