// Messages as the application receives them.

export function normalizeMessages(channel, messages) {
  if (!Array.isArray(messages)) return [];
  return messages.map((m) => ({ channel, seq: m.seq, id: m.id, data: m.data, from: m.from, ts: m.ts }));
}
