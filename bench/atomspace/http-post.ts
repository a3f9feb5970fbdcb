/** A POST to the server under test on 127.0.0.1 (keep-alive), with a string body or a streamed one. */
import { Agent, request } from 'node:http';

export type Post = (path: string, contentType: string, body: string | AsyncIterable<string>) => Promise<{ status: number; body: string }>;

/** `post` over a keep-alive agent of its own; `agent.destroy()` when done, so the process can exit. */
export function poster(port: number, maxSockets: number): { post: Post; agent: Agent } {
  const agent = new Agent({ keepAlive: true, maxSockets });
  const post: Post = (path, contentType, body) =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': contentType } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      if (typeof body === 'string') return void req.end(body);
      void (async () => {
        for await (const piece of body) if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
        req.end();
      })().catch(reject);
    });
  return { post, agent };
}
