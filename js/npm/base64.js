// Base64 to bytes with nothing but `atob`, which every runtime the package supports has
// (Node 16+, browsers, Deno, Bun, workerd, edge runtimes).
export function decodeBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
