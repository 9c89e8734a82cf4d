// The workload's seeded randomness comes from the generator every service shares.
export { below, mulberry32, unit } from '@nestlab/service-kit';
