/**
 * Built-in subtitle engine: turns plain text into timed cues and renders them as SRT, WebVTT or ASS.
 *
 * Defaults follow the Netflix Timed Text Style Guide / BBC subtitle guidelines as applied by Subtitle Edit:
 * 42 characters per line, 2 lines per cue, 17 characters per second, cues between 1 s and 7 s, 2 frames (83 ms) apart.
 * Everything here is pure and deterministic so the same text always yields byte-identical files.
 */

export type SubtitleFormat = 'srt' | 'vtt' | 'ass';

export interface SubtitleCue {
  index: number;
  startMs: number;
  endMs: number;
  lines: string[];
}

export interface SubtitleTimingOptions {
  maxCharsPerLine?: number;
  maxLines?: number;
  charsPerSecond?: number;
  minDurationMs?: number;
  maxDurationMs?: number;
  gapMs?: number;
  /** Time of the first cue. */
  startMs?: number;
}

/** A cue whose timing is already known (e.g. from speech recognition); times are in seconds. */
export interface ManualSegment {
  start: number;
  end: number;
  text: string;
}

export interface RenderOptions {
  language?: string;
  title?: string;
}

export class SubtitleInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SubtitleInputError';
    // Keeps instanceof working if the project is ever compiled to ES5.
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

export const SUBTITLE_DEFAULTS: Required<SubtitleTimingOptions> = Object.freeze({
  maxCharsPerLine: 42,
  maxLines: 2,
  charsPerSecond: 17,
  minDurationMs: 1000,
  maxDurationMs: 7000,
  gapMs: 83,
  startMs: 0,
});

// ---------------------------------------------------------------------------------------------------------------------
// Language data
// ---------------------------------------------------------------------------------------------------------------------

function wordSet(words: string): ReadonlySet<string> {
  return new Set(words.split(' '));
}

/** Words (lower-case, without the final dot) after which a full stop does not end a sentence. */
const ABBREVIATIONS = wordSet(
  // English
  'mr mrs ms mx dr drs prof st sr jr vs etc e.g i.e cf approx dept est gen gov lt col sgt capt cmdr rev hon mt ft ' +
    'ave blvd ' +
    // Portuguese / Spanish
    'sra srs sras srta sres dra dras profa profª eng arq exmo exma ilmo ilma av pe sto sta ud uds vd vds dña aprox ' +
    'obs p.ex',
);

/** Abbreviations that only stay glued when a number follows ("No. 5", "p. 12", "Jan. 3"). */
const NUMBER_ABBREVIATIONS = wordSet(
  'no nos nr nº n p pp vol vols art arts ch chap sec fig figs núm pág págs cap tel ed jan feb mar apr jun jul aug ' +
    'sep sept oct nov dec',
);

/** Good places to start a new line or cue: just before these words. */
const CONJUNCTIONS = wordSet(
  'and but or nor so yet because which that while although though unless until whereas where when who whom whose if ' +
    'whether since e mas ou porque que pois porém quando onde embora se y pero o u ni aunque cuando donde sino si',
);

/** Articles and prepositions belong with the following word, so a break right after them reads badly. */
const WEAK_WORDS = wordSet(
  'a an the of to in on at by for with from my your his her its our their mr. mrs. ms. dr. st. sr. sra. o os as um ' +
    'uma de do da dos das em no na nos nas el la los las un una del al en por para con',
);

const CLOSERS = `"'”’»›)\\]}」』）】〉》〕`;
/** Latin terminators need whitespace after them ("3.14", "e.g." are not ends); CJK ones do not. */
const SENTENCE_BOUNDARY = new RegExp(`[.!?…‼⁇⁈⁉]+[${CLOSERS}]*(?=\\s|$)|[。！？｡]+[${CLOSERS}]*`, 'gu');
const CJK_TERMINATOR = /^[。！？｡]/u;
const LATIN_TERMINATOR_RUN = /^[.!?…‼⁇⁈⁉]+/u;
const LEADING_OPENERS = /^[\p{Ps}\p{Pi}"'¿¡]+/u;

/** Scripts written without spaces: any character boundary is a possible break. */
const CJK_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\u3000-\u303F\u30FB\u30FC\uFF00-\uFFEF]/u;
/** Kinsoku: these never start a line (closing punctuation, small kana, prolonged sound mark). */
const NO_BREAK_BEFORE = /[\p{Pe}\p{Pf}\p{Po}ー々ゝゞヽヾぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ〜～]/u;
/** ...and these never end one. */
const NO_BREAK_AFTER = /[\p{Ps}\p{Pi}]$/u;

const COMBINING_MARK = /^\p{M}$/u;

const TRAILING_PUNCT_ATOM = /^[\p{Pe}\p{Pf}\p{Po}\p{Pd}]+$/u;
const SYMBOL_ATOM = /^[&#@*/\\]+$/u;
const OPENING_PUNCT_ATOM = /^[\p{Ps}\p{Pi}¿¡]+$/u;
const ENDS_WITH_PAUSE = /(?:[,;:…、，；：—–!?！？]|\.\.\.|^-+)[\p{Pe}\p{Pf}"']*$/u;
const SURROUNDING_PUNCT = /^[\p{Ps}\p{Pi}"']+|[\p{Pe}\p{Pf}"']+$/gu;

// ---------------------------------------------------------------------------------------------------------------------
// Break scoring
// ---------------------------------------------------------------------------------------------------------------------

type BreakClass = 'sentence' | 'pause' | 'conjunction' | 'space' | 'weak' | 'hard' | 'forbidden';

/**
 * Costs of breaking at each kind of boundary, as fractions of (capacity)². Balance is scored as the sum of squared
 * lengths, so e.g. the line penalty for a plain space lets a comma win when it is within ~7 characters of the middle.
 */
const LINE_PENALTY: Record<BreakClass, number> = {
  sentence: 0,
  pause: 0.01,
  conjunction: 0.03,
  space: 0.06,
  weak: 0.12,
  hard: 0.5,
  forbidden: 5,
};
const CHUNK_PENALTY: Record<BreakClass, number> = {
  sentence: 0,
  pause: 0.05,
  conjunction: 0.12,
  space: 0.2,
  weak: 0.35,
  hard: 1,
  forbidden: 5,
};
/** Each extra cue costs as much as a completely empty one, so the fewest cues win unless breaks are awful. */
const CUE_COST = 1;

interface Atom {
  text: string;
  /** Length in code points. */
  len: number;
  /** Glue placed before this atom when it shares a line with the previous one. */
  join: '' | ' ';
  /** The boundary before this atom cuts a word that was too long for a line. */
  hard: boolean;
  /** This atom ends a sentence (only used when several sentences share a chunking pass). */
  sentenceEnd: boolean;
}

interface ResolvedOptions extends Required<SubtitleTimingOptions> {
  /** Characters that can be read within maxDurationMs. */
  maxChunkChars: number;
}

// ---------------------------------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------------------------------

export function splitSentences(text: string): string[] {
  return normaliseParagraphs(text).flatMap(splitParagraph);
}

/** Cues timed from reading speed: one cue per sentence, long sentences split at the most natural points. */
export function buildCues(text: string, options: SubtitleTimingOptions = {}): SubtitleCue[] {
  const opts = resolveOptions(options);
  const sentences = splitSentences(text);
  if (sentences.length === 0) throw new SubtitleInputError('Subtitle text is empty');

  const cues: SubtitleCue[] = [];
  let startMs = opts.startMs;
  for (const sentence of sentences) {
    const atoms = tokenise(sentence, opts.maxCharsPerLine);
    const layout = new Layout(atoms);
    for (const [from, to] of chunkAtoms(layout, opts.maxCharsPerLine, opts.maxLines, opts.maxChunkChars)) {
      const chars = layout.width(from, to);
      const durationMs = Math.round(
        clamp((chars * 1000) / opts.charsPerSecond, opts.minDurationMs, opts.maxDurationMs),
      );
      const lines = wrapLines(layout, from, to, opts.maxCharsPerLine, opts.maxLines);
      cues.push({ index: cues.length + 1, startMs, endMs: startMs + durationMs, lines });
      startMs += durationMs + opts.gapMs;
    }
  }
  return cues;
}

/**
 * Cues with externally supplied timing. Times are kept as given (no min/max duration or gap is imposed); text that
 * does not fit one cue is split and the segment's time is shared out in proportion to the characters of each part.
 */
export function cuesFromSegments(segments: ManualSegment[], options: SubtitleTimingOptions = {}): SubtitleCue[] {
  const opts = resolveOptions(options);
  if (!Array.isArray(segments) || segments.length === 0) throw new SubtitleInputError('No subtitle segments given');

  const cues: SubtitleCue[] = [];
  let previous: { start: number; endMs: number } | undefined;
  segments.forEach((segment, i) => {
    const label = `Segment ${i + 1}`;
    if (segment == null || !isFiniteNumber(segment.start) || !isFiniteNumber(segment.end)) {
      throw new SubtitleInputError(`${label}: start and end must be finite numbers of seconds`);
    }
    if (segment.start < 0 || segment.end < 0) throw new SubtitleInputError(`${label}: times must not be negative`);
    const startMs = Math.round(segment.start * 1000);
    const endMs = Math.round(segment.end * 1000);
    if (segment.end <= segment.start || endMs <= startMs) {
      throw new SubtitleInputError(`${label}: end (${segment.end}) must be after start (${segment.start})`);
    }
    if (previous && startMs < previous.endMs) {
      const problem = segment.start < previous.start ? 'is out of order' : 'overlaps the previous segment';
      throw new SubtitleInputError(`${label} ${problem}`);
    }
    previous = { start: segment.start, endMs };

    const sentences = typeof segment.text === 'string' ? splitSentences(segment.text) : [];
    if (sentences.length === 0) throw new SubtitleInputError(`${label}: text is empty`);

    // All sentences of a segment go through one chunking pass so short ones can share a cue.
    const atoms = sentences.flatMap((sentence, s) => {
      const sentenceAtoms = tokenise(sentence, opts.maxCharsPerLine);
      if (s < sentences.length - 1) sentenceAtoms[sentenceAtoms.length - 1].sentenceEnd = true;
      return sentenceAtoms;
    });
    const layout = new Layout(atoms);
    const chunks = chunkAtoms(layout, opts.maxCharsPerLine, opts.maxLines, Number.POSITIVE_INFINITY);
    const widths = chunks.map(([from, to]) => layout.width(from, to));
    const total = widths.reduce((sum, w) => sum + w, 0);

    let chunkStart = startMs;
    let chars = 0;
    chunks.forEach(([from, to], c) => {
      chars += widths[c];
      const remaining = chunks.length - 1 - c;
      const proportional = startMs + Math.round(((endMs - startMs) * chars) / total);
      // Keep every part at least 1 ms long while there is room for it.
      const chunkEnd = remaining === 0 ? endMs : clamp(proportional, chunkStart + 1, endMs - remaining);
      const lines = wrapLines(layout, from, to, opts.maxCharsPerLine, opts.maxLines);
      cues.push({ index: cues.length + 1, startMs: chunkStart, endMs: Math.max(chunkEnd, chunkStart), lines });
      chunkStart = Math.max(chunkEnd, chunkStart);
    });
  });
  return cues;
}

export function renderSubtitles(format: SubtitleFormat, cues: SubtitleCue[], options: RenderOptions = {}): string {
  if (!Array.isArray(cues)) throw new SubtitleInputError('cues must be an array');
  const prepared = cues.map(prepareCue).filter((cue) => cue.lines.length > 0);
  switch (format) {
    case 'srt':
      return renderSrt(prepared);
    case 'vtt':
      return renderVtt(prepared, options);
    case 'ass':
      return renderAss(prepared, options);
    default:
      throw new SubtitleInputError(`Unsupported subtitle format: ${String(format)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Options and normalisation
// ---------------------------------------------------------------------------------------------------------------------

function resolveOptions(options: SubtitleTimingOptions): ResolvedOptions {
  const o = options ?? {};
  const d = SUBTITLE_DEFAULTS;
  const r = {
    maxCharsPerLine: o.maxCharsPerLine ?? d.maxCharsPerLine,
    maxLines: o.maxLines ?? d.maxLines,
    charsPerSecond: o.charsPerSecond ?? d.charsPerSecond,
    minDurationMs: o.minDurationMs ?? d.minDurationMs,
    maxDurationMs: o.maxDurationMs ?? d.maxDurationMs,
    gapMs: o.gapMs ?? d.gapMs,
    startMs: o.startMs ?? d.startMs,
  };
  const rules: Array<[keyof SubtitleTimingOptions, boolean, string]> = [
    ['maxCharsPerLine', Number.isInteger(r.maxCharsPerLine) && r.maxCharsPerLine >= 1, 'an integer >= 1'],
    ['maxLines', Number.isInteger(r.maxLines) && r.maxLines >= 1, 'an integer >= 1'],
    ['charsPerSecond', isFiniteNumber(r.charsPerSecond) && r.charsPerSecond > 0, 'a number > 0'],
    ['minDurationMs', isFiniteNumber(r.minDurationMs) && r.minDurationMs >= 0, 'a number >= 0'],
    [
      'maxDurationMs',
      isFiniteNumber(r.maxDurationMs) && r.maxDurationMs >= Math.max(1, r.minDurationMs),
      '>= 1 and >= minDurationMs',
    ],
    ['gapMs', isFiniteNumber(r.gapMs) && r.gapMs >= 0, 'a number >= 0'],
    ['startMs', isFiniteNumber(r.startMs) && r.startMs >= 0, 'a number >= 0'],
  ];
  for (const [name, valid, rule] of rules) {
    if (!valid) throw new SubtitleInputError(`Invalid subtitle option ${name}: must be ${rule}`);
  }
  return {
    ...r,
    gapMs: Math.round(r.gapMs),
    startMs: Math.round(r.startMs),
    maxChunkChars: Math.max(1, Math.floor((r.maxDurationMs * r.charsPerSecond) / 1000)),
  };
}

/** Paragraphs (separated by blank lines) with all whitespace runs collapsed to single spaces. */
function normaliseParagraphs(text: string): string[] {
  if (typeof text !== 'string') throw new SubtitleInputError('Subtitle text must be a string');
  return text
    .normalize('NFC')
    .replace(/\r\n?|\u2028/g, '\n')
    .replace(/\u2029/g, '\n\n')
    .replace(/[^\P{Cc}\t\n\v\f]|[\u200b\ufeff]/gu, '') // control characters, zero-width space, BOM
    .split(/\n[^\S\n]*\n/)
    .map((paragraph) => paragraph.replace(/\s+/g, ' ').trim())
    .filter((paragraph) => paragraph.length > 0);
}

function splitParagraph(paragraph: string): string[] {
  const sentences: string[] = [];
  let from = 0;
  for (const match of paragraph.matchAll(SENTENCE_BOUNDARY)) {
    const end = match.index + match[0].length;
    if (end >= paragraph.length) break;
    if (!endsSentence(paragraph, match.index, match[0], end)) continue;
    sentences.push(paragraph.slice(from, end).trim());
    from = end;
  }
  sentences.push(paragraph.slice(from).trim());
  return sentences.filter((sentence) => sentence.length > 0);
}

function endsSentence(paragraph: string, start: number, match: string, end: number): boolean {
  if (CJK_TERMINATOR.test(match)) {
    // 「はい。」と言った。 is one sentence: a closing quote followed directly by more text continues it.
    const following = paragraph.slice(end, end + 2);
    return !/[\p{Pe}\p{Pf}]$/u.test(match) || following === '' || /^[\s\p{Ps}\p{Pi}]/u.test(following);
  }
  const next = paragraph.slice(end).trimStart();
  // "Wait... what?" and '"Stop!" he said' continue the same sentence.
  if (/^\p{Ll}/u.test(next)) return false;
  if (LATIN_TERMINATOR_RUN.exec(match)?.[0] !== '.') return true;

  const before = paragraph.slice(0, start);
  const word = before.slice(before.lastIndexOf(' ') + 1).replace(LEADING_OPENERS, '');
  const lower = word.toLowerCase();
  if (ABBREVIATIONS.has(lower)) return false;
  if (NUMBER_ABBREVIATIONS.has(lower) && /^\d/u.test(next)) return false;
  // Initials such as "J. R. R. Tolkien" or "J.R.R. Tolkien"; the pronoun "I" ends sentences too often to count.
  if (word !== 'I' && /^(?:\p{Lu}\.)*\p{Lu}$/u.test(word)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------------------------
// Tokenising, chunking and line breaking
// ---------------------------------------------------------------------------------------------------------------------

function tokenise(sentence: string, maxCharsPerLine: number): Atom[] {
  const atoms: Atom[] = [];
  for (const word of sentence.split(' ')) {
    if (word === '') continue;
    const units = CJK_CHAR.test(word) ? splitCjkWord(word) : [word];
    units.forEach((unit, u) => {
      hardSplit(unit, maxCharsPerLine).forEach((piece, p) => {
        atoms.push({
          text: piece,
          len: codePointLength(piece),
          join: u === 0 && p === 0 ? ' ' : '',
          hard: p > 0,
          sentenceEnd: false,
        });
      });
    });
  }
  return atoms;
}

/** Breaks a space-less CJK run into units that may be separated by a line break, honouring basic kinsoku rules. */
function splitCjkWord(word: string): string[] {
  const units: string[] = [];
  let previous = '';
  for (const ch of word) {
    const breakable = CJK_CHAR.test(ch) || CJK_CHAR.test(previous);
    if (units.length === 0 || (breakable && !NO_BREAK_BEFORE.test(ch) && !NO_BREAK_AFTER.test(previous))) {
      units.push(ch);
    } else {
      units[units.length - 1] += ch;
    }
    previous = ch;
  }
  return units;
}

/** Words longer than a line are cut into near-equal pieces rather than one full piece and a stub. */
function hardSplit(word: string, maxChars: number): string[] {
  const chars = Array.from(word);
  if (chars.length <= maxChars) return [word];
  const size = Math.ceil(chars.length / Math.ceil(chars.length / maxChars));
  const pieces: string[] = [];
  let piece = '';
  let pieceLength = 0;
  for (let i = 0; i < chars.length;) {
    // Combining marks (accents, Thai vowels and tones) stay with their base character.
    let end = i + 1;
    while (end < chars.length && COMBINING_MARK.test(chars[end])) end++;
    if (pieceLength > 0 && pieceLength + (end - i) > size) {
      pieces.push(piece);
      piece = '';
      pieceLength = 0;
    }
    piece += chars.slice(i, end).join('');
    pieceLength += end - i;
    i = end;
  }
  pieces.push(piece);
  return pieces;
}

/** Atoms with prefix sums so the width of any run is O(1). */
class Layout {
  private readonly prefix: number[];

  constructor(readonly atoms: Atom[]) {
    this.prefix = [0];
    for (const atom of atoms) this.prefix.push(this.prefix[this.prefix.length - 1] + atom.join.length + atom.len);
  }

  /** Width of atoms [from, to) on one line, in code points. */
  width(from: number, to: number): number {
    return this.prefix[to] - this.prefix[from] - this.atoms[from].join.length;
  }

  text(from: number, to: number): string {
    let text = this.atoms[from].text;
    for (let i = from + 1; i < to; i++) text += this.atoms[i].join + this.atoms[i].text;
    return text;
  }

  /** How good a break right before atoms[at] is. */
  breakClass(at: number): BreakClass {
    const before = this.atoms[at - 1];
    const after = this.atoms[at];
    // A lone "?" (French spacing) or dash must not start a line, nor may an opening quote end one.
    if (after.join === ' ' && TRAILING_PUNCT_ATOM.test(after.text) && !SYMBOL_ATOM.test(after.text)) return 'forbidden';
    if (OPENING_PUNCT_ATOM.test(before.text)) return 'forbidden';
    if (before.sentenceEnd) return 'sentence';
    if (after.hard) return 'hard';
    if (ENDS_WITH_PAUSE.test(before.text)) return 'pause';
    if (after.join === '') return 'space';
    if (CONJUNCTIONS.has(bareWord(after.text))) return 'conjunction';
    if (WEAK_WORDS.has(bareWord(before.text))) return 'weak';
    return 'space';
  }
}

/**
 * Splits atoms into cue-sized chunks [from, to): each fits maxLines lines of maxChars and (unless it is a single
 * atom) can be read within maxChunkChars. Minimises cue count, then break badness plus squared slack, which for a
 * fixed number of chunks is smallest when the chunks are equally long.
 */
function chunkAtoms(
  layout: Layout,
  maxChars: number,
  maxLines: number,
  maxChunkChars: number,
): Array<[number, number]> {
  const { atoms } = layout;
  const n = atoms.length;
  const capacity = Math.min(maxChars * maxLines, maxChunkChars);
  const scale = capacity * capacity;
  const best = new Array<number>(n + 1).fill(Number.POSITIVE_INFINITY);
  const previous = new Array<number>(n + 1).fill(0);
  best[0] = 0;

  for (let from = 0; from < n; from++) {
    if (!Number.isFinite(best[from])) continue;
    const breakCost = from === 0 ? 0 : Math.round(CHUNK_PENALTY[layout.breakClass(from)] * scale);
    // Greedy filling gives the minimum number of lines, so it decides whether a run fits in maxLines.
    let lines = 1;
    let lineWidth = 0;
    for (let to = from + 1; to <= n; to++) {
      const atom = atoms[to - 1];
      if (to === from + 1) {
        lineWidth = atom.len;
      } else if (lineWidth + atom.join.length + atom.len <= maxChars) {
        lineWidth += atom.join.length + atom.len;
      } else {
        lines++;
        lineWidth = atom.len;
      }
      const width = layout.width(from, to);
      if (to > from + 1 && (lines > maxLines || width > maxChunkChars)) break;
      const slack = Math.max(0, capacity - width);
      const cost = best[from] + breakCost + slack * slack + CUE_COST * scale;
      if (cost < best[to]) {
        best[to] = cost;
        previous[to] = from;
      }
    }
  }

  const chunks: Array<[number, number]> = [];
  for (let to = n; to > 0; to = previous[to]) chunks.unshift([previous[to], to]);
  return chunks;
}

/**
 * Lines for atoms [from, to): one line if it fits, otherwise the fewest lines possible with the most even lengths
 * (sum of squares), nudged towards breaks after punctuation; ties go to the shorter top line (bottom-heavy pyramid).
 */
function wrapLines(layout: Layout, from: number, to: number, maxChars: number, maxLines: number): string[] {
  if (layout.width(from, to) <= maxChars) return [layout.text(from, to)];

  const greedy = greedyBreaks(layout, from, to, maxChars);
  const lineCount = greedy.length + 1;
  if (lineCount > maxLines) return toLines(layout, from, to, greedy); // cannot happen for chunks built by chunkAtoms

  const scale = maxChars * maxChars;
  // cost[r][s]: best way to lay out atoms [s, to) on exactly r lines; next[r][s]: where the first of them ends.
  const cost: number[][] = [];
  const next: number[][] = [];
  for (let r = 1; r <= lineCount; r++) {
    cost[r] = [];
    next[r] = [];
    for (let s = to - 1; s >= from; s--) {
      cost[r][s] = Number.POSITIVE_INFINITY;
      if (r === 1) {
        const width = layout.width(s, to);
        if (width <= maxChars) cost[r][s] = width * width;
        continue;
      }
      for (let e = s + 1; e < to; e++) {
        const width = layout.width(s, e);
        if (width > maxChars) break;
        const rest = cost[r - 1][e];
        if (!Number.isFinite(rest)) continue;
        const total = width * width + Math.round(LINE_PENALTY[layout.breakClass(e)] * scale) + rest;
        if (total < cost[r][s]) {
          cost[r][s] = total;
          next[r][s] = e;
        }
      }
    }
  }
  if (!Number.isFinite(cost[lineCount][from])) return toLines(layout, from, to, greedy);

  const breaks: number[] = [];
  for (let r = lineCount, s = from; r > 1; r--) {
    s = next[r][s];
    breaks.push(s);
  }
  return toLines(layout, from, to, breaks);
}

function greedyBreaks(layout: Layout, from: number, to: number, maxChars: number): number[] {
  const breaks: number[] = [];
  let lineStart = from;
  for (let i = from + 1; i < to; i++) {
    if (layout.width(lineStart, i + 1) > maxChars) {
      breaks.push(i);
      lineStart = i;
    }
  }
  return breaks;
}

function toLines(layout: Layout, from: number, to: number, breaks: number[]): string[] {
  const bounds = [from, ...breaks, to];
  return bounds.slice(1).map((end, i) => layout.text(bounds[i], end));
}

// ---------------------------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------------------------

interface PreparedCue {
  startMs: number;
  endMs: number;
  lines: string[];
}

/** Validates times and removes anything that would break the file structure (raw newlines, blank lines). */
function prepareCue(cue: SubtitleCue, i: number): PreparedCue {
  if (cue == null || !isFiniteNumber(cue.startMs) || !isFiniteNumber(cue.endMs)) {
    throw new SubtitleInputError(`Cue ${i + 1}: startMs and endMs must be finite numbers`);
  }
  const startMs = Math.round(cue.startMs);
  const endMs = Math.round(cue.endMs);
  if (startMs < 0) throw new SubtitleInputError(`Cue ${i + 1}: times must not be negative`);
  if (endMs < startMs) throw new SubtitleInputError(`Cue ${i + 1}: endMs must not be before startMs`);
  const lines = (Array.isArray(cue.lines) ? cue.lines : [])
    .flatMap((line) => String(line).split(/\r\n|\r|\n|\u2028|\u2029/))
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  return { startMs, endMs, lines };
}

function renderSrt(cues: PreparedCue[]): string {
  return cues
    .map(
      (cue, i) =>
        `${i + 1}\n${clockTime(cue.startMs, ',')} --> ${clockTime(cue.endMs, ',')}\n${cue.lines.join('\n')}\n\n`,
    )
    .join('');
}

function renderVtt(cues: PreparedCue[], options: RenderOptions): string {
  const language = headerValue(options.language);
  const header = language ? `WEBVTT\nLanguage: ${language}\n\n` : 'WEBVTT\n\n';
  const body = cues.map((cue) => {
    const text = cue.lines.map(escapeVtt).join('\n');
    return `${clockTime(cue.startMs, '.')} --> ${clockTime(cue.endMs, '.')}\n${text}\n\n`;
  });
  return header + body.join('');
}

const ASS_STYLE_FORMAT =
  'Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, ' +
  'Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, ' +
  'MarginV, Encoding';
// White text, black 3 px outline, no shadow, bottom-centre (numpad 2), 60 px margins; colours are &HAABBGGRR.
const ASS_DEFAULT_STYLE =
  'Style: Default,Arial,64,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,3,0,2,60,60,60,1';
const ASS_EVENT_FORMAT = 'Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text';

function renderAss(cues: PreparedCue[], options: RenderOptions): string {
  const language = headerValue(options.language);
  const scriptInfo = [
    '[Script Info]',
    ...(language ? [`; Language: ${language}`] : []),
    `Title: ${headerValue(options.title) || 'Untitled'}`,
    'ScriptType: v4.00+',
    'PlayResX: 1920',
    'PlayResY: 1080',
    'WrapStyle: 0',
    'ScaledBorderAndShadow: yes',
  ];
  const events = cues.map((cue) => {
    const text = cue.lines.map(escapeAss).join('\\N');
    return `Dialogue: 0,${assTime(cue.startMs)},${assTime(cue.endMs)},Default,,0,0,0,,${text}`;
  });
  return [
    ...scriptInfo,
    '',
    '[V4+ Styles]',
    ASS_STYLE_FORMAT,
    ASS_DEFAULT_STYLE,
    '',
    '[Events]',
    ASS_EVENT_FORMAT,
    ...events,
    '',
  ].join('\n');
}

/** HH:MM:SS,mmm (SRT) or HH:MM:SS.mmm (WebVTT); hours grow beyond two digits rather than wrapping. */
function clockTime(ms: number, separator: ',' | '.'): string {
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor(ms / 60_000) % 60;
  const seconds = Math.floor(ms / 1000) % 60;
  return `${pad(hours, 2)}:${pad(minutes, 2)}:${pad(seconds, 2)}${separator}${pad(ms % 1000, 3)}`;
}

/** H:MM:SS.cc; centiseconds are truncated like Aegisub does, so a cue never starts before its source time. */
function assTime(ms: number): string {
  const cs = Math.floor(ms / 10);
  const hours = Math.floor(cs / 360_000);
  const minutes = Math.floor(cs / 6000) % 60;
  const seconds = Math.floor(cs / 100) % 60;
  return `${hours}:${pad(minutes, 2)}:${pad(seconds, 2)}.${pad(cs % 100, 2)}`;
}

function escapeVtt(line: string): string {
  // Escaping ">" also guarantees that "-->" can never appear in cue text.
  return line.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAss(line: string): string {
  return line.replace(/[{}]/g, (brace) => `\\${brace}`);
}

/** Header values must stay on one line and must not look like a cue timing line. */
function headerValue(value: string | undefined): string {
  return typeof value === 'string' ? value.replace(/\s+/g, ' ').replace(/-->/g, '->').trim() : '';
}

// ---------------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------------

function bareWord(word: string): string {
  return word.replace(SURROUNDING_PUNCT, '').toLowerCase();
}

function codePointLength(text: string): number {
  let surrogatePairs = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) surrogatePairs++;
  }
  return text.length - surrogatePairs;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}
