// Reads /api/chat with the ai package's own client: DefaultChatTransport sends the
// request as useChat does, readUIMessageStream rebuilds the message. Prints it as JSON.
import { DefaultChatTransport, readUIMessageStream } from "ai";

const [url, text] = process.argv.slice(2);
const transport = new DefaultChatTransport({ api: url });
const stream = await transport.sendMessages({
  chatId: "chat-1",
  trigger: "submit-message",
  messageId: undefined,
  abortSignal: undefined,
  messages: [{ id: "u1", role: "user", parts: [{ type: "text", text }] }],
});
let last = null;
const errors = [];
for await (const message of readUIMessageStream({ stream, onError: (e) => errors.push(String(e)) })) {
  last = message;
}
process.stdout.write(JSON.stringify({ message: last, errors }));
