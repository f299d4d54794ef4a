// A small HTTP proxy in front of the S3 test server that injects faults into chosen requests: error replies,
// resets and truncation in the middle of a body, stalls, flipped bytes, extra headers. Requests are forwarded
// byte for byte (Host included, so SigV4 signatures stay valid) and logged for assertions.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  /**
   * Answer with this status and an S3 XML error (e.g. 503 SlowDown) instead of forwarding; with `afterForward`,
   * forward the request first and replace the server's answer (the request took effect, its answer was lost).
   */
  | { kind: 'status'; status: number; code?: string; afterForward?: boolean }
  /** Reset the client's connection once `afterBytes` bytes of its request body have arrived. */
  | { kind: 'reset-request'; afterBytes: number }
  /** Forward headers and `afterBytes` body bytes, then reset the connection (TCP RST). */
  | { kind: 'reset'; afterBytes: number }
  /** Forward headers and `afterBytes` body bytes, then close the connection cleanly (a short body). */
  | { kind: 'truncate'; afterBytes: number }
  /** Forward headers and `afterBytes` body bytes, then send nothing more and keep the connection open. */
  | { kind: 'stall'; afterBytes: number }
  /** Never answer at all (the request hangs before any response header). */
  | { kind: 'hang' }
  /** Forward the request only after `ms` (a slow server); a client that gives up meanwhile is logged as aborted. */
  | { kind: 'delay'; ms: number }
  /** Forward the request at once, but hold the server's answer for `ms` (the server has acted on it already). */
  | { kind: 'delay-response'; ms: number }
  /** Flip the bits of the response body byte at `atByte`. */
  | { kind: 'corrupt'; atByte: number }
  /** Flip the bits of the request body byte at `atByte` (an upload damaged on the way). */
  | { kind: 'corrupt-request'; atByte: number }
  /** Add or replace response headers. */
  | { kind: 'headers'; set: Record<string, string> };

export interface RequestInfo {
  readonly method: string;
  /** Path and query, e.g. `/bucket/key?partNumber=2&uploadId=...`. */
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

export interface FaultRule {
  readonly match: (req: RequestInfo) => boolean;
  readonly fault: Fault;
  /** How many matching requests get the fault (default 1). */
  times?: number;
}

export interface LoggedRequest extends RequestInfo {
  status?: number;
  fault?: Fault['kind'];
  /** The client closed the connection before the whole answer was sent. */
  aborted?: boolean;
}

/** Request matchers for the usual S3 calls (path-style URLs). */
export const on = {
  any: (): FaultRule['match'] => () => true,
  rangedGet: (): FaultRule['match'] => (r) => r.method === 'GET' && r.headers.range !== undefined,
  head: (): FaultRule['match'] => (r) => r.method === 'HEAD',
  uploadPart: (): FaultRule['match'] => (r) => r.method === 'PUT' && /[?&]partNumber=/.test(r.url),
  put: (): FaultRule['match'] => (r) => r.method === 'PUT',
  complete: (): FaultRule['match'] => (r) => r.method === 'POST' && /[?&]uploadId=/.test(r.url),
};

// Hop-by-hop headers are not forwarded; `expect` is not signed by SigV4 and we forward bodies at once.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'expect',
  'te',
  'trailer',
  'upgrade',
  'proxy-connection',
]);

export class FaultProxy {
  readonly log: LoggedRequest[] = [];
  private readonly rules: FaultRule[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly upstreamAgent = new http.Agent({ keepAlive: true, maxSockets: 128 });

  private constructor(
    private readonly server: http.Server,
    private readonly upstream: URL,
  ) {}

  static async start(upstream: string): Promise<FaultProxy> {
    const server = http.createServer();
    const proxy = new FaultProxy(server, new URL(upstream));
    server.on('request', (req, res) => proxy.handle(req, res));
    server.on('connection', (socket) => {
      proxy.sockets.add(socket);
      socket.on('close', () => proxy.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Adds a rule; the first matching rule with times left wins. */
  inject(match: FaultRule['match'], fault: Fault, times = 1): void {
    this.rules.push({ match, fault, times });
  }

  clear(): void {
    this.rules.length = 0;
    this.log.length = 0;
  }

  /** Rules whose faults have not all been used. */
  get pendingFaults(): number {
    return this.rules.filter((r) => (r.times ?? 1) > 0).length;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.upstreamAgent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private takeFault(info: RequestInfo): Fault | undefined {
    const rule = this.rules.find((r) => (r.times ?? 1) > 0 && r.match(info));
    if (!rule) return undefined;
    rule.times = (rule.times ?? 1) - 1;
    return rule.fault;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const info: LoggedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    this.log.push(info);
    const fault = this.takeFault(info);
    if (fault) info.fault = fault.kind;
    res.on('close', () => {
      if (!res.writableFinished) info.aborted = true;
    });
    if (fault?.kind === 'hang') return void req.resume();
    if (fault?.kind === 'delay') {
      const timer = setTimeout(() => this.forward(req, res, info, undefined), fault.ms);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if (fault?.kind === 'status' && !fault.afterForward) {
      req.resume();
      req.on('end', () => this.replyError(res, info, fault.status, fault.code));
      return;
    }
    this.forward(req, res, info, fault);
  }

  private replyError(
    res: http.ServerResponse,
    info: LoggedRequest,
    status: number,
    code = 'InternalError',
  ): void {
    info.status = status;
    const body =
      `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code>` +
      `<Message>injected by the fault proxy</Message><RequestId>fault</RequestId></Error>`;
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
    res.end(info.method === 'HEAD' ? undefined : body);
  }

  private forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    info: LoggedRequest,
    fault: Fault | undefined,
  ): void {
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !HOP_BY_HOP.has(k)));
    const upstreamReq = http.request({
      host: this.upstream.hostname,
      port: this.upstream.port,
      method: req.method,
      path: req.url,
      headers,
      agent: this.upstreamAgent,
    });
    upstreamReq.on('error', () => res.destroy());
    req.on('error', () => upstreamReq.destroy());
    res.on('close', () => upstreamReq.destroy());
    if (fault?.kind === 'corrupt-request') this.corruptRequest(req, upstreamReq, fault.atByte);
    else req.pipe(upstreamReq);
    if (fault?.kind === 'reset-request') this.resetAfterRequestBytes(req, upstreamReq, fault.afterBytes);
    upstreamReq.on('response', (upstreamRes) => {
      if (fault?.kind === 'delay-response') {
        const timer = setTimeout(() => this.relayResponse(res, info, upstreamRes, undefined), fault.ms);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      this.relayResponse(res, info, upstreamRes, fault);
    });
  }

  private relayResponse(
    res: http.ServerResponse,
    info: LoggedRequest,
    upstreamRes: http.IncomingMessage,
    fault: Fault | undefined,
  ): void {
    {
      if (fault?.kind === 'status') {
        upstreamRes.resume();
        upstreamRes.on('end', () => this.replyError(res, info, fault.status, fault.code));
        return;
      }
      info.status = upstreamRes.statusCode;
      const outHeaders: http.OutgoingHttpHeaders = { ...upstreamRes.headers };
      for (const h of HOP_BY_HOP) delete outHeaders[h];
      if (fault?.kind === 'headers') Object.assign(outHeaders, fault.set);
      res.writeHead(upstreamRes.statusCode ?? 502, outHeaders);
      res.flushHeaders();
      this.relayBody(upstreamRes, res, fault);
    }
  }

  private corruptRequest(req: http.IncomingMessage, upstreamReq: http.ClientRequest, atByte: number): void {
    let seen = 0;
    req.on('data', (data: Buffer) => {
      if (atByte >= seen && atByte < seen + data.length) {
        data = Buffer.from(data);
        data[atByte - seen] = data[atByte - seen]! ^ 0xff;
      }
      seen += data.length;
      if (!upstreamReq.write(data)) req.pause();
    });
    upstreamReq.on('drain', () => req.resume());
    req.on('end', () => upstreamReq.end());
  }

  private resetAfterRequestBytes(
    req: http.IncomingMessage,
    upstreamReq: http.ClientRequest,
    afterBytes: number,
  ): void {
    let received = 0;
    req.on('data', (data: Buffer) => {
      received += data.length;
      if (received < afterBytes || req.socket.destroyed) return;
      upstreamReq.destroy();
      req.socket.resetAndDestroy();
    });
  }

  /** Copies the upstream body to the client, applying a body fault at its byte position. */
  private relayBody(
    upstreamRes: http.IncomingMessage,
    res: http.ServerResponse,
    fault: Fault | undefined,
  ): void {
    const cut = fault && 'afterBytes' in fault ? fault.afterBytes : Infinity;
    let sent = 0;
    upstreamRes.on('data', (data: Buffer) => {
      if (sent >= cut) return;
      if (fault?.kind === 'corrupt' && fault.atByte >= sent && fault.atByte < sent + data.length) {
        data = Buffer.from(data);
        data[fault.atByte - sent] = data[fault.atByte - sent]! ^ 0xff;
      }
      if (sent + data.length < cut) {
        sent += data.length;
        if (!res.write(data)) upstreamRes.pause();
        return;
      }
      res.write(data.subarray(0, cut - sent));
      sent = cut;
      upstreamRes.destroy();
      this.cutConnection(res, fault!);
    });
    res.on('drain', () => upstreamRes.resume());
    upstreamRes.on('end', () => res.end());
  }

  private cutConnection(res: http.ServerResponse, fault: Fault): void {
    const socket = res.socket;
    if (!socket) return;
    if (fault.kind === 'reset') {
      // Let the bytes already written leave first, then send RST.
      setImmediate(() => socket.resetAndDestroy());
    } else if (fault.kind === 'truncate') {
      socket.end();
    }
    // 'stall': leave the socket open with nothing more to say; close() or the client ends it.
  }
}
