// The emulator tests' one HTTP client: a keep-alive agent and a request
// that resolves { status, headers, text, json } or rejects on a transport error.
import http from 'node:http';
import { BATCH_PATH } from '../index.mjs';

export const agent = new http.Agent({ keepAlive: true });

/** One HTTP request; resolves { status, headers, text, json } or rejects on transport error. */
export function request(url, { method = 'POST', path = BATCH_PATH, headers = {}, body, agent: a = agent } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
    const req = http.request(new URL(path, url), { method, agent: a, headers: {
      ...(payload ? { 'Content-Type': 'application/json;charset=utf-8', 'Content-Length': payload.length } : {}),
      ...headers,
    } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}
