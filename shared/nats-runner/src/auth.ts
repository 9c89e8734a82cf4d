// Per-service NATS credentials for a server we start ourselves (the embedded
// fleet), with the same least-privilege matrix as deploy/nats/nats.conf, but
// per stack: where compose's config says `nestlab.*.…` (any stack) this one
// names the stack, so a stack's services cannot read or write another
// stack's subjects on a shared server. nats-runner's auth.test.ts checks the
// matrix against deploy/nats/nats.conf, so the two cannot drift apart.
import { randomBytes } from 'node:crypto';

/** The seats on a stack's NATS: the lab (CLI and console) and the four services. */
export const NATS_ROLES = ['lab', 'l0', 'xen', 'dom0', 'iommu'] as const;
export type NatsRole = (typeof NATS_ROLES)[number];

export interface NatsPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

/**
 * What each role may publish and subscribe to, with `S` standing for the stack
 * token (deploy/nats/nats.conf has `*` there). Requesters subscribe only to
 * their own inbox prefix `_INBOX.S.<role>` (protocol's inboxPrefix), so no
 * one reads another's replies. Services may publish into their stack's
 * inboxes: allow_responses grants die with a nats-server restart, and a
 * request received before one must still get its reply after it. Each
 * service may ask its own `svc.ping`: at start it checks that no other
 * instance already serves its stack (service-kit's presence guard).
 */
export const ROLE_PERMISSIONS: Readonly<Record<NatsRole, NatsPermissions>> = {
  lab: { publish: ['nestlab.S.>'], subscribe: ['nestlab.S.>', '_INBOX.S.lab.>'] },
  l0: {
    publish: [
      'nestlab.S.iommu.pt.translate',
      'nestlab.S.xen.irq.msi',
      'nestlab.S.l0.svc.ping',
      '_INBOX.S.>',
    ],
    subscribe: [
      'nestlab.S.l0.>',
      'nestlab.S.iommu.iotlb.invalidate',
      'nestlab.S.iommu.iotlb.prime',
      '_INBOX.S.l0.>',
    ],
  },
  xen: {
    publish: [
      'nestlab.S.l0.mmu.update',
      'nestlab.S.l0.mem.access',
      'nestlab.S.iommu.pt.map',
      'nestlab.S.iommu.pt.unmap',
      'nestlab.S.dom0.evtchn.*.notify',
      'nestlab.S.xen.svc.ping',
      '_INBOX.S.>',
    ],
    subscribe: ['nestlab.S.xen.>', '_INBOX.S.xen.>'],
  },
  dom0: {
    publish: [
      'nestlab.S.l0.mem.access',
      'nestlab.S.l0.pci.config',
      'nestlab.S.l0.dev.*.notify',
      'nestlab.S.xen.hypercall.>',
      'nestlab.S.xen.p2m.get',
      'nestlab.S.dom0.svc.ping',
      '_INBOX.S.>',
    ],
    subscribe: ['nestlab.S.dom0.>', '_INBOX.S.dom0.>'],
  },
  iommu: {
    publish: [
      'nestlab.S.iommu.iotlb.invalidate',
      'nestlab.S.iommu.iotlb.prime',
      'nestlab.S.iommu.svc.ping',
      '_INBOX.S.>',
    ],
    subscribe: ['nestlab.S.iommu.>', '_INBOX.S.iommu.>'],
  },
};

export interface NatsCredential {
  readonly user: string;
  readonly pass: string;
}

export interface StackAuth {
  readonly stack: string;
  readonly credentials: Readonly<Record<NatsRole, NatsCredential>>;
}

const STACK_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** The role's permissions for one stack: `S` replaced by the stack token. */
export function permissionsFor(role: NatsRole, stack: string): NatsPermissions {
  if (!STACK_TOKEN.test(stack)) {
    throw new RangeError(`stack ${JSON.stringify(stack)} is not a subject token (A-Z a-z 0-9 _ -)`);
  }
  const fill = (subjects: readonly string[]) =>
    subjects.map((s) => s.replace(/^(nestlab|_INBOX)\.S\./, `$1.${stack}.`));
  const p = ROLE_PERMISSIONS[role];
  return { publish: fill(p.publish), subscribe: fill(p.subscribe) };
}

/** Fresh random passwords for every role of a stack; user names are `<role>-<stack>`. */
export function generateStackAuth(stack: string): StackAuth {
  permissionsFor('lab', stack); // validates the token
  const credentials = Object.fromEntries(
    NATS_ROLES.map((role) => [
      role,
      { user: `${role}-${stack}`, pass: randomBytes(18).toString('base64url') },
    ]),
  ) as Record<NatsRole, NatsCredential>;
  return { stack, credentials };
}

const quoted = (s: string) => JSON.stringify(s);
const list = (subjects: readonly string[]) => `[${subjects.map(quoted).join(', ')}]`;

/** A seat with its own permissions, outside the per-stack roles (e.g. the sweep's work seat). */
export type ExtraSeat = NatsCredential & { readonly permissions: NatsPermissions };

const userLine = (c: NatsCredential, p: NatsPermissions) =>
  `    { user: ${quoted(c.user)}, password: ${quoted(c.pass)}, permissions: ` +
  `{ publish: ${list(p.publish)}, subscribe: ${list(p.subscribe)}, allow_responses: true } }`;

/**
 * The `authorization` block for nats-server: one user per role per stack (and
 * any `extra` seats), no anonymous access. Pass it as startNatsServer's `config`.
 */
export function authorizationConfig(
  stacks: readonly StackAuth[],
  extra: readonly ExtraSeat[] = [],
): string {
  const users = stacks.flatMap((s) =>
    NATS_ROLES.map((role) => userLine(s.credentials[role], permissionsFor(role, s.stack))),
  );
  const others = extra.map((u) => userLine(u, u.permissions));
  return `authorization {\n  users: [\n${[...users, ...others].join('\n')}\n  ]\n}\n`;
}
