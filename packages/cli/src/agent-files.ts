import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isName } from '@aoa/core';
import type { AgentKeys } from '@aoa/sdk';
import type { JWK } from 'jose';

/** What the rotator answered at enrolment, kept beside the keys so a restart needs no join token. */
export interface Enrolment {
  agentId: string;
  grantId: string;
  app: string;
  env: string;
  dpopJkt: string;
}

/** An agent's key directory: what it holds so far (nothing, keys, or keys and their enrolment). */
export interface KeyDirState {
  keys?: AgentKeys;
  enrolment?: Enrolment;
}

const FILES = { encryption: 'encryption.jwk', dpop: 'dpop.jwk', enrolment: 'enrolment.json' } as const;

/**
 * Writes `data` to `path` so a reader sees the old content or the new, never a part: a temporary file
 * in the same directory (mode 0600, `wx`), fsync, rename over `path`, fsync the directory.
 */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(temp, 'wx', 0o600);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDir(dirname(path));
}

/** Removes `path` (absent is fine) and makes the removal durable. */
export async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  await syncDir(dirname(path));
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Creates the key directory with mode 0700, or refuses an existing one others can read. */
export async function prepareKeyDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await stat(dir);
  if (!info.isDirectory()) throw new Error(`--key-dir ${dir} is not a directory`);
  if ((info.mode & 0o077) !== 0) {
    throw new Error(
      `--key-dir ${dir} is open to others (mode ${(info.mode & 0o777).toString(8)}): chmod 700 it`,
    );
  }
}

async function readPrivateFile(path: string): Promise<string | undefined> {
  try {
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0) {
      throw new Error(`${path} is open to others (mode ${(info.mode & 0o777).toString(8)}): chmod 600 it`);
    }
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function parseJson(path: string, text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Reported below, without echoing the content (it is a private key).
  }
  throw new Error(`${path}: not a JSON object`);
}

async function readKey(path: string): Promise<JWK | undefined> {
  const text = await readPrivateFile(path);
  if (text === undefined) return undefined;
  const jwk = parseJson(path, text);
  const fields = ['x', 'y', 'd'].every((k) => typeof jwk[k] === 'string');
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !fields) {
    throw new Error(`${path}: not a private EC P-256 JWK`);
  }
  return jwk as JWK;
}

async function readEnrolment(path: string): Promise<Enrolment | undefined> {
  const text = await readPrivateFile(path);
  if (text === undefined) return undefined;
  const e = parseJson(path, text);
  const strings = ['grantId', 'dpopJkt'].every((k) => typeof e[k] === 'string' && e[k] !== '');
  if (!strings || !isName(e.agentId) || !isName(e.app) || !isName(e.env)) {
    throw new Error(`${path}: not an enrolment record (agentId, grantId, app, env, dpopJkt)`);
  }
  return e as unknown as Enrolment;
}

/** Reads the key directory: both keys (or neither) and the enrolment made with them, if any. */
export async function readKeyDir(dir: string): Promise<KeyDirState> {
  const [encryption, dpop, enrolment] = await Promise.all([
    readKey(join(dir, FILES.encryption)),
    readKey(join(dir, FILES.dpop)),
    readEnrolment(join(dir, FILES.enrolment)),
  ]);
  if (!encryption || !dpop) {
    if (encryption || dpop) throw new Error(`--key-dir ${dir} holds only one of the two keys`);
    return {};
  }
  return enrolment ? { keys: { encryption, dpop }, enrolment } : { keys: { encryption, dpop } };
}

/**
 * Stores keys (mode 0600) and the enrolment made with them, each atomically. The old enrolment goes
 * first, so a crash midway never pairs it with new keys.
 */
export async function writeKeyDir(dir: string, keys: AgentKeys, enrolment: Enrolment): Promise<void> {
  await removeFile(join(dir, FILES.enrolment));
  await writeFileAtomic(join(dir, FILES.encryption), `${JSON.stringify(keys.encryption)}\n`);
  await writeFileAtomic(join(dir, FILES.dpop), `${JSON.stringify(keys.dpop)}\n`);
  await writeFileAtomic(join(dir, FILES.enrolment), `${JSON.stringify(enrolment)}\n`);
}

/** The public half of an agent key (EC P-256 JWK): what enrolment and policy register. */
export function publicJwk(jwk: AgentKeys['dpop']): AgentKeys['dpop'] {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}
