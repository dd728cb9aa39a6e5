import { Environment } from '@marcbachmann/cel-js';

/**
 * What a condition can read. `claims`: the verified IdP token's payload (JSON values) for a root
 * delegation, or the presented aoa token's claims for a sub-delegation. `request`: the delegation
 * asked for.
 */
export interface ConditionInput {
  claims: Readonly<Record<string, unknown>>;
  request: { child: string; env: string; scopes: readonly string[]; audience: readonly string[] };
}

export interface ConditionOutcome {
  holds: boolean;
  /** Why it did not hold when evaluation failed (no such key, wrong type): public, never a claim value. */
  error?: string;
}

/** A CEL condition compiled and type-checked at policy load, evaluated on every decision. */
export interface Condition {
  readonly source: string;
  evaluate(input: ConditionInput): ConditionOutcome;
}

/**
 * What bounds a condition's cost. Parsing refuses more AST nodes, depth, literal list or map entries or
 * call arguments than these; a comprehension (`all`, `exists`, `exists_one`, `map`, `filter`) may
 * not nest inside another, so evaluation is linear in the claims, which the 16 KiB subject token
 * bounds; and `matches` is refused because the evaluator runs regular expressions on a backtracking
 * engine, where a pattern can take exponential time (use `startsWith`, `endsWith`, `contains`, `in`).
 */
export const CONDITION_LIMITS = {
  maxSourceLength: 2048,
  maxAstNodes: 256,
  maxDepth: 32,
  maxListElements: 64,
  maxMapEntries: 64,
  maxCallArguments: 8,
  maxComprehensionNesting: 1,
} as const;

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
const REFUSED_FUNCTIONS: Record<string, string> = {
  matches:
    'matches() is refused (regular expressions can take exponential time): use startsWith, endsWith, contains or in',
};

/** One environment for every condition: created on first use, never at import. */
let environment: Environment | undefined;
const conditionEnvironment = (): Environment => {
  environment ??= new Environment({
    limits: {
      maxAstNodes: CONDITION_LIMITS.maxAstNodes,
      maxDepth: CONDITION_LIMITS.maxDepth,
      maxListElements: CONDITION_LIMITS.maxListElements,
      maxMapEntries: CONDITION_LIMITS.maxMapEntries,
      maxCallArguments: CONDITION_LIMITS.maxCallArguments,
    },
  })
    .registerVariable('claims', 'map<string, dyn>')
    .registerVariable({
      name: 'request',
      schema: { child: 'string', env: 'string', scopes: 'list<string>', audience: 'list<string>' },
    });
  return environment;
};

/**
 * Compiles and type-checks a CEL condition once, at policy load. `problem` is one line naming the
 * column (1-based) of the error, e.g. `column 1: Unknown variable: claim`.
 *
 * @example
 * const compiled = compileCondition('claims.repository_id == "123" && claims.ref == "refs/heads/main"');
 * if ('condition' in compiled) compiled.condition.evaluate({ claims, request }).holds;
 */
export function compileCondition(source: string): { condition: Condition } | { problem: string } {
  if (source.length > CONDITION_LIMITS.maxSourceLength) {
    return { problem: `longer than ${CONDITION_LIMITS.maxSourceLength} characters` };
  }
  const env = conditionEnvironment();
  let program: ReturnType<Environment['parse']>;
  try {
    program = env.parse(source);
  } catch (error) {
    return { problem: describeError(source, error) };
  }
  const refused = refusedConstruct(program.ast as AstNode);
  if (refused) return { problem: refused };
  const checked = env.check(source);
  if (!checked.valid) return { problem: describeError(source, checked.error) };
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return { problem: `must be a bool expression, is ${checked.type}` };
  }
  const condition: Condition = {
    source,
    evaluate(input) {
      let value: unknown;
      try {
        value = program(input as unknown as Record<string, unknown>);
      } catch (error) {
        return { holds: false, error: firstLine(error) };
      }
      if (typeof value === 'boolean') return { holds: value };
      return { holds: false, error: `evaluated to ${value === null ? 'null' : typeof value}, not a bool` };
    },
  };
  return { condition: Object.freeze(condition) };
}

/** The parser's node shape, as far as the limits below need it. */
interface AstNode {
  op: string;
  args: unknown;
  pos?: number;
}

/** The first construct of the AST the cost rules refuse, as a problem naming its column. */
function refusedConstruct(root: AstNode): string | undefined {
  const visit = (node: unknown, nesting: number): string | undefined => {
    if (Array.isArray(node)) {
      for (const child of node) {
        const found = visit(child, nesting);
        if (found) return found;
      }
      return undefined;
    }
    if (typeof node !== 'object' || node === null || !('op' in node)) return undefined;
    const ast = node as AstNode;
    const name =
      (ast.op === 'rcall' || ast.op === 'call') && Array.isArray(ast.args) ? ast.args[0] : undefined;
    const at = `column ${(ast.pos ?? 0) + 1}`;
    if (typeof name === 'string' && REFUSED_FUNCTIONS[name]) return `${at}: ${REFUSED_FUNCTIONS[name]}`;
    const inner = typeof name === 'string' && COMPREHENSIONS.has(name) ? nesting + 1 : nesting;
    if (inner > CONDITION_LIMITS.maxComprehensionNesting) {
      return `${at}: ${name}() inside another comprehension is refused (its cost would grow with the square of the claims)`;
    }
    return visit(ast.args, inner);
  };
  return visit(root, 0);
}

/** `column N: <message>` for a parse or type error of the library (which carries the node's offset). */
function describeError(source: string, error: unknown): string {
  const pos = (error as { node?: { pos?: unknown } })?.node?.pos;
  const message = firstLine(error);
  if (typeof pos !== 'number') return message;
  const before = source.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return line > 1 ? `line ${line}, column ${column}: ${message}` : `column ${column}: ${message}`;
}

const firstLine = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split('\n')[0]?.trim() || 'invalid condition';
