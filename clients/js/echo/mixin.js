// How `EchoClient` is put together from the files that each hold one part of it.

/** Adds the methods of each object to `cls`'s prototype as a class body would: not enumerable. */
export function mixIn(cls, ...parts) {
  for (const part of parts) {
    for (const [name, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(part))) {
      Object.defineProperty(cls.prototype, name, { ...descriptor, enumerable: false });
    }
  }
}
