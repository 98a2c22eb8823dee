// The delegate config of each container, kept in dataDir as flannel's plugin keeps it (one file per
// container ID, directory 0700, file 0600), so that DEL hands the delegate exactly what ADD did even
// after subnet.env changed or is gone. Written to a temp file and renamed, so a crash never leaves half a
// config for DEL to choke on; the temp name starts with a dot, which no container ID does.
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

export class DelegateStore {
  constructor(readonly dir: string) {}

  /** The file of one container; the ID is checked by readCniArgs to be a plain file name. */
  pathOf(containerId: string): string {
    return join(this.dir, containerId);
  }

  async save(containerId: string, config: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: DIR_MODE });
    const path = this.pathOf(containerId);
    const temp = join(this.dir, `.${containerId}.${process.pid}.tmp`);
    try {
      const file = await open(temp, "w", FILE_MODE);
      try {
        await file.writeFile(config);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  /** The saved config, or null when this container has none. */
  async load(containerId: string): Promise<string | null> {
    try {
      return await readFile(this.pathOf(containerId), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  }

  async remove(containerId: string): Promise<void> {
    await rm(this.pathOf(containerId), { force: true });
  }
}
