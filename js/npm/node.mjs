// Node, `import`: the CommonJS build re-exported. One build for both module systems
// means one WebAssembly instance and one YunxinError class, whichever way a program
// (or its dependencies) loads the package.
import api from './node.cjs';

export const {
  BATCH_PATH,
  DEFAULT_BASE_URL,
  Delivery,
  MAX_RECEIVERS_PER_REQUEST,
  YunxinError,
  answerLost,
  buildBatchRequests,
  checksum,
  classifyResponse,
  mergeReport,
  parseBatchResponse,
  resignRequest,
  send,
  signHeaders,
  signYunxinCallback,
  transportFailure,
  validateNotification,
  verifyYunxinCallback,
} = api;
