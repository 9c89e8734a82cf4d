export { createL0Hypervisor, type L0Options } from './app.js';
export { L0Error, type L0ErrorCode } from './errors.js';
// Where L0 keeps its files, so the lab can read a disk image back on its own:
// the image of device <bdf> (DEFAULT_BDF unless configured) in stack
// <NESTLAB_STACK> is diskImagePath(dataDirFromEnv(), stack, bdf).
export { diskImagePath, DEFAULT_DISK_CACHE, type DiskCacheOptions } from './blk/disk-backend.js';
export { DEFAULT_BDF, dataDirFromEnv, l0SettingsFromEnv, type L0Settings } from './config.js';
export { ramFilePath, type RamBacking } from './memory/ram-file.js';
export { stateFilePath } from './persist/state-file.js';
