export {
  type AssertionContext,
  authenticateClient,
  CLIENT_ASSERTION_ALGORITHMS,
  verifyClientAssertion,
} from './client-assertion.js';
