import { useEffect, useState } from 'preact/hooks';

/** A file a task made, as outputs list them (`output.files`), or a bare URL found in the output. */
export interface OutputFile {
  url: string;
  contentType: string;
  filename: string;
  size?: number;
}

type Kind = 'image' | 'video' | 'audio' | 'subtitles' | 'text' | 'other';

const BY_EXTENSION: [RegExp, string][] = [
  [/\.(png)$/i, 'image/png'],
  [/\.(jpe?g)$/i, 'image/jpeg'],
  [/\.(webp)$/i, 'image/webp'],
  [/\.(gif)$/i, 'image/gif'],
  [/\.(mp4|m4v)$/i, 'video/mp4'],
  [/\.(webm)$/i, 'video/webm'],
  [/\.(mov)$/i, 'video/quicktime'],
  [/\.(mp3)$/i, 'audio/mpeg'],
  [/\.(wav)$/i, 'audio/wav'],
  [/\.(m4a|aac)$/i, 'audio/aac'],
  [/\.(ogg|oga)$/i, 'audio/ogg'],
  [/\.(srt)$/i, 'application/x-subrip'],
  [/\.(vtt)$/i, 'text/vtt'],
  [/\.(ass|ssa)$/i, 'text/x-ssa'],
  [/\.(txt)$/i, 'text/plain'],
];

export function kindOf(contentType: string): Kind {
  if (contentType.startsWith('image/')) return 'image';
  if (contentType.startsWith('video/')) return 'video';
  if (contentType.startsWith('audio/')) return 'audio';
  if (/subrip|vtt|ssa|ass/.test(contentType)) return 'subtitles';
  if (contentType.startsWith('text/') || contentType === 'application/json') return 'text';
  return 'other';
}

function pathOf(url: string): string {
  try {
    return new URL(url, location.origin).pathname;
  } catch {
    return url;
  }
}

/** Every file of an output: `files` entries first, then any other http(s) or /files/ URL it holds. */
export function filesOf(output: unknown): OutputFile[] {
  const found = new Map<string, OutputFile>();
  const visit = (value: unknown, key: string) => {
    if (typeof value === 'string') {
      if (!/^(https?:\/\/|\/files\/)/.test(value) || found.has(value)) return;
      const name = pathOf(value).split('/').pop() ?? key;
      const type = BY_EXTENSION.find(([re]) => re.test(name))?.[1] ?? 'application/octet-stream';
      found.set(value, { url: value, contentType: type, filename: name });
    } else if (Array.isArray(value)) {
      value.forEach((v) => visit(v, key));
    } else if (value && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      if (typeof record.url === 'string' && typeof record.content_type === 'string' && !found.has(record.url)) {
        found.set(record.url, {
          url: record.url,
          contentType: record.content_type,
          filename: typeof record.filename === 'string' ? record.filename : pathOf(record.url).split('/').pop()!,
          size: typeof record.size_bytes === 'number' ? record.size_bytes : undefined,
        });
      }
      for (const [k, v] of Object.entries(record)) visit(v, k);
    }
  };
  if (output && typeof output === 'object') {
    const files = (output as { files?: unknown }).files;
    if (Array.isArray(files)) visit(files, 'files');
    visit(output, 'output');
  }
  return [...found.values()];
}

function bytes(size?: number): string {
  if (size === undefined) return '';
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

function Caption({ file }: { file: OutputFile }) {
  return (
    <figcaption>
      <span class="mono">{file.filename}</span> {bytes(file.size)}{' '}
      <a href={file.url} download={file.filename}>
        Download
      </a>
    </figcaption>
  );
}

/** The text of a subtitle or text file (same origin: the signed /files link needs no credential). */
function TextFile({ file, inline }: { file: OutputFile; inline?: string }) {
  const [text, setText] = useState<string | undefined>(inline);
  const [error, setError] = useState('');
  useEffect(() => {
    if (inline !== undefined) return;
    fetch(file.url)
      .then(async (res) => (res.ok ? setText(await res.text()) : setError(`could not read it (HTTP ${res.status})`)))
      .catch(() => setError('could not read it'));
  }, [file.url, inline]);
  return (
    <figure class="text-output">
      <pre role="region" tabIndex={0} aria-label={`Contents of ${file.filename}`} data-output="text">
        {text ?? (error || 'Loading…')}
      </pre>
      <Caption file={file} />
    </figure>
  );
}

/**
 * A task's output shown as what it is: images in a grid, videos and audio in players, subtitles as text (beside the
 * video when the output has one), and any text the output carries inline (a transcript).
 */
export function Outputs({ output, taskId }: { output: Record<string, unknown>; taskId: string }) {
  const files = filesOf(output);
  const by = (kind: Kind) => files.filter((f) => kindOf(f.contentType) === kind);
  const images = by('image');
  const videos = by('video');
  const audios = by('audio');
  const subtitles = [...by('subtitles'), ...by('text')];
  const others = by('other');
  // Subtitles and transcripts often come inline as well (`content`, `text`): shown without a second download.
  const inline = typeof output.content === 'string' ? output.content : undefined;
  const transcript = typeof output.text === 'string' && subtitles.length === 0 ? output.text : undefined;
  return (
    <div class="outputs">
      {images.length > 0 && (
        <div class="image-grid">
          {images.map((file, i) => (
            <figure key={file.url}>
              <a href={file.url} target="_blank" rel="noopener">
                <img src={file.url} alt={`Output ${i + 1} of task ${taskId.slice(0, 8)}`} loading="lazy" />
              </a>
              <Caption file={file} />
            </figure>
          ))}
        </div>
      )}
      {videos.map((file, i) => (
        <div key={file.url} class={i === 0 && subtitles.length > 0 ? 'media-pair' : undefined}>
          <figure>
            <video controls preload="metadata" src={file.url} aria-label={`Output video ${file.filename}`} />
            <Caption file={file} />
          </figure>
          {i === 0 && subtitles.map((s, j) => <TextFile key={s.url} file={s} inline={j === 0 ? inline : undefined} />)}
        </div>
      ))}
      {videos.length === 0 &&
        subtitles.map((s, j) => <TextFile key={s.url} file={s} inline={j === 0 ? inline : undefined} />)}
      {audios.map((file) => (
        <figure key={file.url}>
          <audio controls preload="metadata" src={file.url} aria-label={`Output audio ${file.filename}`} />
          <Caption file={file} />
        </figure>
      ))}
      {transcript !== undefined && (
        <figure class="text-output">
          <pre role="region" tabIndex={0} aria-label="Transcript" data-output="text">
            {transcript}
          </pre>
        </figure>
      )}
      {others.length > 0 && (
        <ul class="files">
          {others.map((file) => (
            <li key={file.url}>
              <a href={file.url} download={file.filename}>
                {file.filename}
              </a>{' '}
              {bytes(file.size)}
            </li>
          ))}
        </ul>
      )}
      {files.length === 0 && transcript === undefined && <p class="muted">This output holds no file.</p>}
    </div>
  );
}
