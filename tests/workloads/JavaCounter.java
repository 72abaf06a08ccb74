// SPDX-License-Identifier: MIT
//
// A JVM program with state in its heap that checks itself: four worker
// threads append numbered values to a shared list under a lock and keep a
// running sum; every 100 ms the main thread recomputes the sum and each
// worker's sequence from the list and prints one line
//     tick=<n> size=<list size> sum=<sum> ok
// ("BAD ..." instead of "ok" when the heap disagrees with itself).
//
//     java -cp DIR JavaCounter LOG READY   READY gets the pid once running
//
// Run with the JVM's default options: its hsperfdata file is a writable
// MAP_SHARED mapping, and it has a dozen threads of its own (GC, JIT...).
import java.io.FileWriter;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

public class JavaCounter {
	static final int WORKERS = 4;
	static final Object lock = new Object();
	static final List<Long> values = new ArrayList<>();
	static final long[] next = new long[WORKERS];
	static long sum;

	static String check(Map<Integer, Long> seen) {
		long s = 0;
		long[] expect = new long[WORKERS];
		for (long v : values) {
			int w = (int) (v / 1_000_000_000L);
			long seq = v % 1_000_000_000L;
			if (w < 0 || w >= WORKERS || seq != expect[w])
				return "BAD value " + v + " (worker " + w + " expected seq " + expect[w] + ")";
			expect[w]++;
			s += v;
		}
		if (s != sum)
			return "BAD sum " + s + " != running sum " + sum;
		for (int w = 0; w < WORKERS; w++) {
			if (expect[w] != next[w])
				return "BAD worker " + w + " count " + expect[w] + " != " + next[w];
			Long before = seen.put(w, expect[w]);
			if (before != null && before > expect[w])
				return "BAD worker " + w + " went back from " + before + " to " + expect[w];
		}
		return "ok";
	}

	public static void main(String[] args) throws Exception {
		for (int i = 0; i < WORKERS; i++) {
			final int w = i;
			Thread t = new Thread(() -> {
				while (true) {
					synchronized (lock) {
						long v = w * 1_000_000_000L + next[w];
						values.add(v);
						sum += v;
						next[w]++;
					}
					try {
						Thread.sleep(5 + w);
					} catch (InterruptedException e) {
						return;
					}
				}
			}, "worker-" + i);
			t.setDaemon(true);
			t.start();
		}
		Map<Integer, Long> seen = new HashMap<>();
		try (PrintWriter log = new PrintWriter(new FileWriter(args[0], true), true)) {
			Path ready = Path.of(args[1]);
			Path tmp = Path.of(args[1] + ".tmp");
			Files.writeString(tmp, ProcessHandle.current().pid() + "\n");
			Files.move(tmp, ready, StandardCopyOption.ATOMIC_MOVE);
			for (long tick = 1;; tick++) {
				Thread.sleep(100);
				String line;
				synchronized (lock) {
					line = "tick=" + tick + " size=" + values.size() + " sum=" + sum + " "
					       + check(seen);
				}
				log.println(line);
			}
		}
	}
}
