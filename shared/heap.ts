/**
 * A binary max-heap that knows each item's position, so an item can be removed from
 * the middle in O(log n). The sampler keeps the k smallest keys by evicting the max.
 */
export interface HeapItem {
  /** Position in the heap array, maintained by the heap; -1 when not in a heap. */
  pos: number;
}

export class MaxHeap<T extends HeapItem> {
  private readonly items: T[] = [];

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    item.pos = this.items.length;
    this.items.push(item);
    this.up(item.pos);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top) this.removeAt(0);
    return top;
  }

  /** Replaces the top with `item` (which must not be in a heap) and restores order. */
  replaceTop(item: T): void {
    this.items[0] = item;
    item.pos = 0;
    this.down(0);
  }

  remove(item: T): void {
    if (item.pos >= 0 && this.items[item.pos] === item) this.removeAt(item.pos);
  }

  /** The items in ascending order (a copy; the heap is unchanged). */
  sorted(): T[] {
    return this.items.slice().sort((a, b) => (this.less(a, b) ? -1 : this.less(b, a) ? 1 : 0));
  }

  private removeAt(i: number): void {
    const items = this.items;
    const gone = items[i]!;
    const last = items.pop()!;
    gone.pos = -1;
    if (i < items.length) {
      items[i] = last;
      last.pos = i;
      this.down(i);
      this.up(last.pos);
    }
  }

  private up(i: number): void {
    const items = this.items;
    const item = items[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p]!;
      if (!this.less(parent, item)) break;
      items[i] = parent;
      parent.pos = i;
      i = p;
    }
    items[i] = item;
    item.pos = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && this.less(items[l]!, items[r]!)) c = r;
      const child = items[c]!;
      if (!this.less(item, child)) break;
      items[i] = child;
      child.pos = i;
      i = c;
    }
    items[i] = item;
    item.pos = i;
  }
}
