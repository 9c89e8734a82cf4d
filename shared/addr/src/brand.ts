// A brand makes two bigints of different address layers distinct types, so a
// pseudo-physical address cannot be passed where a bus address is expected.
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };
