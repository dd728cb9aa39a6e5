export {
  type AssertionContext,
  authenticateClient,
  CLIENT_ASSERTION_ALGORITHMS,
} from './client-assertion.js';
