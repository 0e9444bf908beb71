/**
 * What VM Import supports, as data: the kernels the VM Import/Export User Guide lists per Linux
 * distribution, and the Windows versions it lists. Source: "Requirements for resources that you import
 * with VM Import/Export" → "Operating systems supported by VM Import/Export"
 * (https://docs.aws.amazon.com/vm-import/latest/userguide/prerequisites.html, read 2026-12).
 * The guide lists kernels per distribution release; the judge accepts a kernel that any release of the
 * same distribution lists (the simulator's reading, sim/README.md).
 */

/** Kernel series per os-release ID. A listed series matches a release string that starts with it, followed by the end, `-`, `.` or `_`. */
export const LINUX_KERNELS: Readonly<Record<string, readonly string[]>> = {
  amzn: ['4.14', '4.19', '5.4', '5.10', '6.1'],
  centos: ['2.6.18', '2.6.32', '3.10.0', '4.18.0', '5.14.0'],
  debian: ['2.6.32', '3.2.0', '4.19.0', '5.10.0', '6.1.0'],
  fedora: ['3.2.5', '3.9.5', '3.11.10', '6.0.7', '6.2.9', '6.5.6', '6.8.5', '6.11.4', '6.14.0', '6.17.1'],
  ol: ['2.6.32', '2.6.39', '3.8.13', '3.10.0', '4.1.12', '4.14.35', '4.18.0', '5.4.17', '5.14.0', '5.15.0', '6.12.0'],
  rhel: ['2.6.18', '2.6.32', '3.10.0', '4.18.0', '5.14.0', '6.12.0'],
  rocky: ['5.14.0', '6.12.0'],
  sles: ['2.6.32.12', '3.0.13', '3.0.76', '3.0.101', '3.12.28', '3.12.49', '4.4', '4.12', '5.3', '5.14.21', '6.4'],
  ubuntu: [
    '3.2.0',
    '3.5.0',
    '3.8.0',
    '3.11',
    '3.13.0',
    '3.16',
    '3.19.0',
    '4.2.0',
    '4.4.0',
    '4.8.0',
    '4.10.0',
    '4.15.0',
    '5.4.0',
    '5.15.0',
    '6.8.0',
    '6.11.0',
    '6.17.0',
    '7.0.0',
  ],
};

/** Kernels the guide excludes inside a listed series (RHEL 6: "2.6.32 (except 2.6.32-71)"). */
const EXCLUDED: Readonly<Record<string, readonly string[]>> = { rhel: ['2.6.32-71'] };

/** Oracle Linux 5.10-5.11: any Unbreakable Enterprise Kernel, recognised by its el5uek suffix. */
const SUFFIXES: Readonly<Record<string, readonly string[]>> = { ol: ['el5uek'] };

function seriesMatches(series: string, release: string): boolean {
  return release.startsWith(series) && /^($|[-._])/.test(release.slice(series.length));
}

export function kernelSupported(distro: string, release: string): boolean {
  if ((EXCLUDED[distro] ?? []).some((x) => seriesMatches(x, release))) return false;
  if ((SUFFIXES[distro] ?? []).some((s) => release.includes(s))) return true;
  return (LINUX_KERNELS[distro] ?? []).some((series) => seriesMatches(series, release));
}

/** The Windows part of the same page: Server 2003 (SP1 or later) … 2025, 1709, 1803; Windows 7, 8, 8.1, 10, 11. */
export interface WindowsProduct {
  productName: string;
  /** CSDVersion, e.g. "Service Pack 2" (absent on systems without one). */
  servicePack?: string;
  /** ReleaseId, e.g. "1709" on the semi-annual Server releases. */
  releaseId?: string;
  /** InstallationType: "Server", "Client", "Server Core", "Nano Server". */
  installationType?: string;
}

export function windowsSupported(p: WindowsProduct): boolean {
  if (/nano/i.test(p.installationType ?? '')) return false; // "Nano Server installations are not supported"
  const server = /Windows(?:\s*\(R\))?\s+Server(?:\s*\(R\))?\s*(2003|2008|2012|2016|2019|2022|2025)\b(\s*R2)?/i.exec(
    p.productName
  );
  if (server) {
    // Server 2003 needs Service Pack 1 or later; 2003 R2 shipped on SP1.
    if (server[1] === '2003' && !server[2]) return /Service Pack [1-9]/i.test(p.servicePack ?? '');
    return true;
  }
  if (/Windows Server (Standard|Datacenter)/i.test(p.productName) && /^(1709|1803)$/.test(p.releaseId ?? ''))
    return true;
  return /^(Microsoft )?Windows (7|8|8\.1|10|11)\b/i.test(p.productName);
}
