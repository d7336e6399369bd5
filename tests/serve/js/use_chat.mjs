// useChat's own engine without React: @ai-sdk/react's useChat is a React binding of the
// ai package's AbstractChat (its Chat class extends it with a state kept in React). Here
// the same AbstractChat with that state kept in plain fields: sendMessage, the default
// transport (POST {id, messages, trigger, messageId} to the api), the UI message stream
// processing into chat.messages, stop(), status and onFinish are all the ai package's.
// Prints {messages, status, finish, errors} as JSON.
// Usage: node use_chat.mjs URL TEXT [stop]   (stop: chat.stop() once text has streamed in)
import { AbstractChat, DefaultChatTransport } from "ai";

class PlainState {
  constructor() {
    this.messages = [];
    this.status = "ready";
    this.error = undefined;
  }
  pushMessage = (message) => { this.messages = this.messages.concat(message); };
  popMessage = () => { this.messages = this.messages.slice(0, -1); };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
  };
  snapshot = (value) => structuredClone(value);
}

class Chat extends AbstractChat {
  constructor(init) {
    super({ ...init, state: new PlainState() });
  }
}

const [api, text, mode] = process.argv.slice(2);
const errors = [];
let finish = null;
const chat = new Chat({
  id: "chat-node",
  transport: new DefaultChatTransport({ api }),
  onError: (error) => errors.push(String(error)),
  onFinish: ({ isAbort, isDisconnect, isError }) => { finish = { isAbort, isDisconnect, isError }; },
});

const sending = chat.sendMessage({ text });
if (mode === "stop") {
  const streamedIn = () => {
    const last = chat.messages.at(-1);
    return last && last.role === "assistant" && last.parts.some((p) => (p.text || "").length > 0);
  };
  while (!streamedIn()) await new Promise((resolve) => setTimeout(resolve, 5));
  await chat.stop();
}
await sending;
process.stdout.write(JSON.stringify({ messages: chat.messages, status: chat.status, finish, errors }));
