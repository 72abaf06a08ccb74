// SPDX-License-Identifier: MIT
//
// A JVM under allocation: four threads each fill HashMaps with keys from
// their own pseudo-random stream, fold every map into a running digest and
// drop it (so the collector runs all the time), for a fixed number of
// rounds. The digest of each thread depends only on its seed, so a run that
// was checkpointed and restored must print exactly the result of an
// uninterrupted one.
//
//     java -cp DIR JavaAlloc ROUNDS LOG READY
//
// LOG gets "round <thread> <n>" as each round ends and finally
// "result <hex>"; READY gets the pid once the threads run.
import java.io.FileWriter;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Map;

public class JavaAlloc {
	static final int THREADS = 4;
	static final int ENTRIES = 100000;
	static PrintWriter log;

	static synchronized void say(String s)
	{
		log.println(s);
		log.flush();
	}

	/* xorshift64*: the same stream for a seed on every run */
	static long next(long[] st)
	{
		long x = st[0];
		x ^= x >>> 12;
		x ^= x << 25;
		x ^= x >>> 27;
		st[0] = x;
		return x * 0x2545F4914F6CDD1DL;
	}

	static long work(int id, int rounds)
	{
		long[] st = {0x9E3779B97F4A7C15L * (id + 1)};
		long digest = id;
		for (int r = 0; r < rounds; r++) {
			Map<Long, long[]> m = new HashMap<>();
			for (int i = 0; i < ENTRIES; i++) {
				long k = next(st) & 0xFFFFFL;
				long[] v = m.get(k);
				if (v == null)
					m.put(k, v = new long[3]);
				v[i % 3] += next(st);
			}
			long h = m.size();
			for (Map.Entry<Long, long[]> e : m.entrySet()) {
				long[] v = e.getValue();
				h += e.getKey() * 31 + (v[0] ^ v[1] * 7 ^ v[2] * 13);
			}
			digest = digest * 1000003 ^ h;
			say("round " + id + " " + (r + 1));
		}
		return digest;
	}

	public static void main(String[] args) throws Exception
	{
		int rounds = Integer.parseInt(args[0]);
		log = new PrintWriter(new FileWriter(args[1], true));
		long[] digests = new long[THREADS];
		Thread[] ts = new Thread[THREADS];
		for (int i = 0; i < THREADS; i++) {
			final int id = i;
			ts[i] = new Thread(() -> digests[id] = work(id, rounds), "alloc-" + i);
			ts[i].start();
		}
		Path tmp = Path.of(args[2] + ".tmp");
		Files.writeString(tmp, ProcessHandle.current().pid() + "\n");
		Files.move(tmp, Path.of(args[2]), StandardCopyOption.ATOMIC_MOVE);
		long result = 0;
		for (int i = 0; i < THREADS; i++) {
			ts[i].join();
			result = result * 31 + digests[i];
		}
		say("result " + Long.toHexString(result));
	}
}
