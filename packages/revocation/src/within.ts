/**
 * Whether `work` was fulfilled within `ms`: false when it was rejected or is still pending (it goes
 * on; its outcome is then ignored). Never throws, and leaves no timer behind.
 *
 * @example
 * if (!(await fulfilledWithin(nc.flush(), 500))) log.warn('flush not answered');
 */
export async function fulfilledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const fulfilled = await Promise.race([
    work.then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(resolve, ms, false);
    }),
  ]);
  clearTimeout(timer);
  return fulfilled;
}
