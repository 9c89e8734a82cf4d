// Byte counts as the reports print them.
export const gib = (b: number) => `${Math.round((b / 2 ** 30) * 10) / 10} GiB`;
export const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;
