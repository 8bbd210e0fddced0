import { Writable } from 'node:stream';
import pino from 'pino';
import { AppConfig } from '../config/app-config';
import { loggerOptions, redactUrl, rootLoggerOptions } from './logger.options';

describe('redactUrl', () => {
  it('masks the value of a token in the query string, wherever it stands', () => {
    expect(redactUrl('/api/v1/media/tasks/1/events?token=eyJhbGciOi.x.y')).toBe(
      '/api/v1/media/tasks/1/events?token=[redacted]',
    );
    expect(redactUrl('/x?a=1&token=secret&b=2')).toBe('/x?a=1&token=[redacted]&b=2');
    expect(redactUrl('/x?access_token=secret')).toBe('/x?access_token=[redacted]');
  });

  it('masks the signature of a file link and of a provider callback URL', () => {
    expect(redactUrl('/files/tasks/a.png?expires=1767225600&sig=c2VjcmV0')).toBe(
      '/files/tasks/a.png?expires=1767225600&sig=[redacted]',
    );
    expect(redactUrl('/api/v1/providers/runpod/callbacks/1?sig=abc')).toBe(
      '/api/v1/providers/runpod/callbacks/1?sig=[redacted]',
    );
    expect(redactUrl('/x?SIG=abc&%73ig=def')).toBe('/x?SIG=[redacted]&%73ig=[redacted]');
  });

  it('masks a token whose name is percent-encoded (the query parser decodes it, so the guard would accept it)', () => {
    expect(redactUrl('/x?%74oken=secret')).toBe('/x?%74oken=[redacted]');
  });

  it('leaves other URLs and parameters alone', () => {
    expect(redactUrl('/api/v1/media/tasks?limit=5&cursor=abc')).toBe('/api/v1/media/tasks?limit=5&cursor=abc');
    expect(redactUrl('/x?tokens=1&mytoken=2')).toBe('/x?tokens=1&mytoken=2');
    expect(redactUrl('/x?signal=1&sigma=2')).toBe('/x?signal=1&sigma=2');
    expect(redactUrl('/health')).toBe('/health');
    expect(redactUrl(undefined)).toBeUndefined();
  });
});

describe('loggerOptions', () => {
  it('hands nestjs-pino a logger of its own and mounts no request middleware (no AsyncLocalStorage context)', () => {
    const options = loggerOptions(AppConfig.fromEnv({ NODE_ENV: 'test', LOG_LEVEL: 'warn' }));
    expect(options.forRoutes).toEqual([]);
    const { logger } = options.pinoHttp as { logger: pino.Logger };
    expect(logger.level).toBe('warn');
  });

  it('keeps X-API-Key out of the logs', () => {
    const { redact } = rootLoggerOptions(AppConfig.fromEnv({ NODE_ENV: 'test' }));
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    pino({ redact }, sink).info({ req: { headers: { 'x-api-key': 'mt_supersecret' } } }, 'request');
    expect(lines.join('')).not.toContain('mt_supersecret');
    expect(JSON.parse(lines[0]).req.headers['x-api-key']).toBe('[redacted]');
  });

  it("keeps a flow step's secret and an http step's authorization header out of the logs", () => {
    const { redact } = rootLoggerOptions(AppConfig.fromEnv({ NODE_ENV: 'test' }));
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const step = { id: 'tell', kind: 'notify', secret: 'whsec_notforlogs', headers: { authorization: 'Bearer tok' } };
    pino({ redact }, sink).info({ step }, 'step');
    expect(lines.join('')).not.toContain('notforlogs');
    expect(lines.join('')).not.toContain('Bearer tok');
    expect(JSON.parse(lines[0]).step).toMatchObject({ id: 'tell', secret: '[redacted]' });
  });
});
