// The rule lives in @aoa/revocation so the issuer's RFC 7009 endpoint applies the very same one.
export {
  authorizeRevoke,
  type Caller,
  callerName,
  isAdmin,
  mayList,
  type TargetPlace,
} from '@aoa/revocation';
