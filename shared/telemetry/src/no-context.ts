import { ROOT_CONTEXT, type Context, type ContextManager } from '@opentelemetry/api';

/**
 * The context manager for a process that records no spans: it carries no
 * context across async hops. The default one (AsyncLocalStorage) hooks every
 * promise the process makes, a cost worth paying only when spans are kept.
 * Spans still get valid ids; they just start new traces.
 */
export class NoContextManager implements ContextManager {
  active(): Context {
    return ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    _ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return fn.call(thisArg, ...args);
  }

  bind<T>(_ctx: Context, target: T): T {
    return target;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    return this;
  }
}
