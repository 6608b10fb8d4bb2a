// A WebSocket stand-in the test drives by hand: it records what the hook
// sends and lets the test open, feed and close each socket.
export class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static instances: FakeWebSocket[] = [];
  static reset() {
    FakeWebSocket.instances = [];
  }
  static last(): FakeWebSocket {
    const s = FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    if (!s) throw new Error("no socket was created");
    return s;
  }

  readonly url: string;
  readyState = FakeWebSocket.CONNECTING;
  sent: string[] = [];
  closedByClient = false;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;

  constructor(url: string) {
    this.url = url;
    FakeWebSocket.instances.push(this);
  }
  send(data: string) {
    if (this.readyState !== FakeWebSocket.OPEN) throw new Error("send on a socket that is not open");
    this.sent.push(data);
  }
  close() {
    this.closedByClient = true;
    this.readyState = FakeWebSocket.CLOSED;
  }
  // --- driven by the test ---
  open() {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.(new Event("open"));
  }
  message(body: unknown) {
    this.onmessage?.(new MessageEvent("message", { data: typeof body === "string" ? body : JSON.stringify(body) }));
  }
  drop() {
    this.readyState = FakeWebSocket.CLOSED;
    this.onerror?.(new Event("error"));
    this.onclose?.(new CloseEvent("close", { code: 1006 }));
  }
  get subscriptions(): string[] {
    return this.sent.map((s) => JSON.parse(s) as { type: string; range: string }).filter((m) => m.type === "subscribe").map((m) => m.range);
  }
  get hasHandlers(): boolean {
    return Boolean(this.onopen || this.onmessage || this.onclose || this.onerror);
  }
}
