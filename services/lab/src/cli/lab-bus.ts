/** The CLI's seat on NATS is the lab's seat (credentials from a fleet or NATS_USER/NATS_PASS). */
export { labSeat as labBus } from '../fleet/lab-seat.js';
