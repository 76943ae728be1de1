// Starting the Herald binary named by HERALD_BIN for the live tests: free ports, in-memory
// storage, a fresh admin key, and the gRPC address read from the `herald serving` log line.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";

/** How long Herald may take to start. */
const START_DEADLINE_MS = 30_000;

export interface Herald {
  readonly child: ChildProcess;
  readonly grpc: string;
  readonly adminKey: string;
}

/**
 * Starts Herald on free ports with in-memory storage, plus `extraEnv`, and reads its gRPC
 * address from the startup log line.
 */
export async function startHerald(extraEnv: Readonly<Record<string, string>> = {}): Promise<Herald> {
  const bin = process.env["HERALD_BIN"];
  if (bin === undefined || bin === "") {
    throw new Error("HERALD_BIN must name the Herald binary (an absolute path) for the live test");
  }
  const adminKey = randomBytes(24).toString("hex");
  const child = spawn(bin, [], {
    env: {
      ...process.env,
      WEBHOOK_GRPC_ADDR: "127.0.0.1:0",
      WEBHOOK_ADMIN_ADDR: "127.0.0.1:0",
      WEBHOOK_STORAGE_TYPE: "memory",
      WEBHOOK_LOG_FORMAT: "json",
      WEBHOOK_ADMIN_API_KEY: adminKey,
      WEBHOOK_EGRESS_ALLOW_CIDRS: "127.0.0.0/8",
      WEBHOOK_RETRY_INITIAL_DELAY: "100ms",
      WEBHOOK_RETRY_MIN_DELAY: "0",
      ...extraEnv,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  // Even if the test run dies, Herald must not outlive it.
  process.once("exit", () => child.kill("SIGKILL"));
  const tail: string[] = [];
  const grpc = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`Herald did not start:\n${tail.join("\n")}`)),
      START_DEADLINE_MS,
    );
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`Herald exited with ${code}:\n${tail.join("\n")}`)));
    createInterface({ input: child.stderr! }).on("line", (line) => {
      tail.push(line);
      if (tail.length > 50) tail.shift();
      try {
        const entry = JSON.parse(line) as { message?: string; grpc?: string };
        if (entry.message === "herald serving" && entry.grpc !== undefined) {
          clearTimeout(timer);
          resolve(entry.grpc);
        }
      } catch {
        // not a JSON line: kept in the tail only
      }
    });
  });
  child.removeAllListeners("exit");
  return { child, grpc, adminKey };
}

