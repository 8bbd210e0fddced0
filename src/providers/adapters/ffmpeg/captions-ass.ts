/** One timed caption of an SRT file. */
export interface Cue {
  start: number;
  end: number;
  text: string;
}

export type CaptionStyle = 'classic' | 'segments' | 'highlight';

const TIME = /(\d{1,2}):(\d{2}):(\d{2})[,.](\d{1,3})/;

function seconds(stamp: string): number {
  const m = TIME.exec(stamp);
  if (!m) throw new Error(`not an SRT time: ${stamp}`);
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) + Number(m[4].padEnd(3, '0')) / 1000;
}

/** The cues of an SRT file; throws when there are none (the input is not subtitles). */
export function parseSrt(text: string): Cue[] {
  const cues: Cue[] = [];
  for (const block of text
    .replace(/^\uFEFF/, '')
    .replace(/\r/g, '')
    .split(/\n{2,}/)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const timing = lines.findIndex((l) => l.includes('-->'));
    if (timing < 0) continue;
    const [from, to] = lines[timing].split('-->');
    const body = lines
      .slice(timing + 1)
      .join('\n')
      .trim();
    if (body) cues.push({ start: seconds(from), end: seconds(to), text: body });
  }
  if (cues.length === 0) throw new Error('no subtitle cues found');
  return cues;
}

function assTime(s: number): string {
  const cs = Math.max(0, Math.round(s * 100));
  const h = Math.floor(cs / 360000);
  const m = Math.floor((cs % 360000) / 6000);
  const sec = Math.floor((cs % 6000) / 100);
  return `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}.${String(cs % 100).padStart(2, '0')}`;
}

function escape(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\{/g, '(').replace(/\}/g, ')').replace(/\n/g, '\\N');
}

/**
 * An ASS script for the cues in one of the three styles of the sources: `classic` (white text, black outline, at the
 * bottom), `segments` (each cue in a boxed band) and `highlight` (the words light up one by one as they are said).
 */
export function toAss(cues: Cue[], style: CaptionStyle, width: number, height: number): string {
  const size = Math.round(height * 0.06);
  const styles: Record<CaptionStyle, string> = {
    // Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline,
    // StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV,
    // Encoding
    classic: `Style: Default,DejaVu Sans,${size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,3,0,2,40,40,40,1`,
    segments: `Style: Default,DejaVu Sans,${size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H99000000,1,0,0,0,100,100,0,0,3,12,0,2,40,40,60,1`,
    highlight: `Style: Default,DejaVu Sans,${size},&H0000FFFF,&H00FFFFFF,&H00000000,&H00000000,1,0,0,0,100,100,0,0,1,3,0,2,40,40,40,1`,
  };
  const events = cues.map((cue) => {
    let text = escape(cue.text);
    if (style === 'highlight') {
      const words = cue.text.split(/\s+/).filter(Boolean);
      const each = Math.max(1, Math.floor(((cue.end - cue.start) * 100) / Math.max(1, words.length)));
      text = words.map((w) => `{\\k${each}}${escape(w)}`).join(' ');
    }
    return `Dialogue: 0,${assTime(cue.start)},${assTime(cue.end)},Default,,0,0,0,,${text}`;
  });
  return [
    '[Script Info]',
    'ScriptType: v4.00+',
    `PlayResX: ${width}`,
    `PlayResY: ${height}`,
    'WrapStyle: 0',
    '',
    '[V4+ Styles]',
    'Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding',
    styles[style],
    '',
    '[Events]',
    'Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text',
    ...events,
    '',
  ].join('\n');
}
