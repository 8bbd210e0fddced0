import { createHmac } from 'node:crypto';
import {
  amzDate,
  EMPTY_SHA256,
  encodeKeyPath,
  presignUrl,
  sha256Hex,
  signingKey,
  signRequest,
  uriEncode,
} from './sigv4';

/** Published example values: AWS SigV4 test suite (get-vanilla) and the S3 "Authenticating Requests" examples. */
const SUITE = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const S3_DOCS = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const S3_SCOPE = { region: 'us-east-1', service: 's3' };
const MAY_24_2013 = new Date('2013-05-24T00:00:00Z');

describe('SigV4', () => {
  it('formats the timestamp and hashes the empty body', () => {
    expect(amzDate(new Date('2015-08-30T12:36:00.123Z'))).toBe('20150830T123600Z');
    expect(sha256Hex('')).toBe(EMPTY_SHA256);
  });

  it('derives the signing key as the documented HMAC chain', () => {
    const h = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
    const byHand = h(h(h(h(`AWS4${SUITE.secretAccessKey}`, '20150830'), 'us-east-1'), 'iam'), 'aws4_request');
    expect(signingKey(SUITE.secretAccessKey, '20150830', { region: 'us-east-1', service: 'iam' })).toEqual(byHand);
  });

  it('signs the test suite get-vanilla request', () => {
    const signed = signRequest(
      SUITE,
      { region: 'us-east-1', service: 'service' },
      { method: 'GET', url: 'https://example.amazonaws.com/', payloadHash: EMPTY_SHA256 },
      new Date('2015-08-30T12:36:00Z'),
    );
    expect(signed.canonicalRequest).toBe(
      'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n' + EMPTY_SHA256,
    );
    expect(signed.signature).toBe('5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
    expect(signed.headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ' +
        'SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
    expect(signed.headers['x-amz-date']).toBe('20150830T123600Z');
    expect(signed.headers.host).toBeUndefined();
  });

  it('signs the S3 GET Object example (Range header)', () => {
    const signed = signRequest(
      S3_DOCS,
      S3_SCOPE,
      {
        method: 'GET',
        url: 'https://examplebucket.s3.amazonaws.com/test.txt',
        headers: { Range: 'bytes=0-9', 'x-amz-content-sha256': EMPTY_SHA256 },
        payloadHash: EMPTY_SHA256,
      },
      MAY_24_2013,
    );
    expect(signed.canonicalRequest).toBe(
      [
        'GET',
        '/test.txt',
        '',
        'host:examplebucket.s3.amazonaws.com',
        'range:bytes=0-9',
        `x-amz-content-sha256:${EMPTY_SHA256}`,
        'x-amz-date:20130524T000000Z',
        '',
        'host;range;x-amz-content-sha256;x-amz-date',
        EMPTY_SHA256,
      ].join('\n'),
    );
    expect(sha256Hex(signed.canonicalRequest)).toBe('7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972');
    expect(signed.signature).toBe('f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
  });

  it('signs the S3 PUT Object example (encoded key, extra headers, body hash)', () => {
    const body = 'Welcome to Amazon S3.';
    const payloadHash = sha256Hex(body);
    expect(payloadHash).toBe('44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072');
    const signed = signRequest(
      S3_DOCS,
      S3_SCOPE,
      {
        method: 'PUT',
        url: `https://examplebucket.s3.amazonaws.com/${encodeKeyPath('test$file.text')}`,
        headers: {
          Date: 'Fri, 24 May 2013 00:00:00 GMT',
          'x-amz-storage-class': 'REDUCED_REDUNDANCY',
          'x-amz-content-sha256': payloadHash,
        },
        payloadHash,
      },
      MAY_24_2013,
    );
    expect(signed.canonicalRequest.split('\n').slice(0, 2)).toEqual(['PUT', '/test%24file.text']);
    expect(sha256Hex(signed.canonicalRequest)).toBe('9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d');
    expect(signed.signature).toBe('98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd');
  });

  it('signs the S3 examples with query strings (valueless and sorted parameters)', () => {
    const headers = { 'x-amz-content-sha256': EMPTY_SHA256 };
    const lifecycle = signRequest(
      S3_DOCS,
      S3_SCOPE,
      { method: 'GET', url: 'https://examplebucket.s3.amazonaws.com/?lifecycle', headers, payloadHash: EMPTY_SHA256 },
      MAY_24_2013,
    );
    expect(lifecycle.canonicalRequest.split('\n')[2]).toBe('lifecycle=');
    expect(lifecycle.signature).toBe('fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543');
    const list = signRequest(
      S3_DOCS,
      S3_SCOPE,
      {
        method: 'GET',
        url: 'https://examplebucket.s3.amazonaws.com/?prefix=J&max-keys=2',
        headers,
        payloadHash: EMPTY_SHA256,
      },
      MAY_24_2013,
    );
    expect(list.canonicalRequest.split('\n')[2]).toBe('max-keys=2&prefix=J');
    expect(list.signature).toBe('34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7');
  });

  it('presigns the S3 documentation GET URL', () => {
    const url = presignUrl(S3_DOCS, S3_SCOPE, {
      url: 'https://examplebucket.s3.amazonaws.com/test.txt',
      expiresSeconds: 86400,
      date: MAY_24_2013,
    });
    expect(url).toBe(
      'https://examplebucket.s3.amazonaws.com/test.txt' +
        '?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
        '&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
        '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
        '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    );
  });

  it('recomputes a presigned signature independently (path-style URL with a port)', () => {
    const url = new URL(
      presignUrl(S3_DOCS, S3_SCOPE, {
        url: 'http://127.0.0.1:9000/media/tasks/t1/a%20b.png',
        expiresSeconds: 600,
        date: MAY_24_2013,
      }),
    );
    const credential = 'AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request';
    const canonical = [
      'GET',
      '/media/tasks/t1/a%20b.png',
      `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${credential}&X-Amz-Date=20130524T000000Z` +
        '&X-Amz-Expires=600&X-Amz-SignedHeaders=host',
      'host:127.0.0.1:9000',
      '',
      'host',
      'UNSIGNED-PAYLOAD',
    ].join('\n');
    const sts = `AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n${sha256Hex(canonical)}`;
    const h = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
    const key = h(h(h(h(`AWS4${S3_DOCS.secretAccessKey}`, '20130524'), 'us-east-1'), 's3'), 'aws4_request');
    expect(url.searchParams.get('X-Amz-Signature')).toBe(createHmac('sha256', key).update(sts).digest('hex'));
  });

  it('encodes like RFC 3986 (UTF-8 bytes, unreserved kept)', () => {
    expect(uriEncode('a b+c/ü~._-*')).toBe('a%20b%2Bc%2F%C3%BC~._-%2A');
    expect(encodeKeyPath('tasks/t 1/x$.png')).toBe('tasks/t%201/x%24.png');
  });
});
