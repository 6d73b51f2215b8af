"""The Kodak figure of a ``semcom jscc eval`` report: quality vs SNR, DeepJSCC against the references.

Top row, PSNR on AWGN and on block Rayleigh at the rate that has the digital reference
(CBR 1/12 for the shipped model), with SwinJSCC's published AWGN points; bottom row, MS-SSIM
(and LPIPS when the report has it) on AWGN. Every DeepJSCC rate is drawn, the reference rate
in bold.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)


def _cbr_label(cbr: float) -> str:
    return f"CBR 1/{round(1 / cbr)}"


def plot_report(report: dict, path: Path) -> None:
    """Write the figure of ``report`` (the JSON of ``semcom jscc eval``) to ``path`` (PNG)."""
    snrs = report["snr_db"]
    digital = report.get("digital") or {}
    focus = next(iter(digital), str(report["rayleigh_rates"][0] if report["rayleigh_rates"] else ""))
    metrics = [("psnr", "awgn", "PSNR (dB)"), ("psnr", "rayleigh", "PSNR (dB)")]
    if report.get("ms_ssim"):
        metrics.append(("ms_ssim", "awgn", "MS-SSIM"))
    if report.get("lpips"):
        metrics.append(("lpips", "awgn", "LPIPS (lower is better)"))
    columns = 2
    rows = -(-len(metrics) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.2 * columns, 4.4 * rows), squeeze=False)
    for axis, (metric, channel, label) in zip(axes.flat, metrics, strict=False):
        for rate, values in report[metric].get(channel, {}).items():
            bold = rate == focus
            axis.plot(snrs, values, "o-", color=f"C{list(report['cbr']).index(rate)}", lw=2.2 if bold else 1.0,
                      ms=4 if bold else 3, alpha=1.0 if bold else 0.6,
                      label=f"DeepJSCC (ours), {_cbr_label(report['cbr'][rate])}")
        reference = digital.get(focus, {}).get(channel)
        if reference is not None and metric in ("psnr", "ms_ssim"):
            axis.plot(snrs, reference[metric], "s--", color="black", lw=1.6,
                      label=f"HEVC + 5G LDPC, {_cbr_label(report['cbr'][focus])}")
            if metric == "psnr":
                axis.plot(snrs, reference["psnr_if_delivered"], ":", color="grey", lw=1.2,
                          label="  same, if every image arrived")
        if metric == "psnr" and channel == "awgn":
            points = report["swinjscc_kodak_awgn_cbr_1_12"]
            axis.plot([float(s) for s in points], list(points.values()), "^-", color="tab:red", lw=1.6,
                      label="SwinJSCC (published), CBR 1/12")
        axis.set_title(f"Kodak24, {'AWGN' if channel == 'awgn' else 'block Rayleigh (perfect CSI)'}: {label}")
        axis.set_xlabel("SNR (dB)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(metrics):]:
        axis.axis("off")
        if report.get("lpips_skipped"):
            axis.text(0.05, 0.5, "LPIPS not computed:\n" + report["lpips_skipped"].replace(" (", "\n("), fontsize=10)
    figure.suptitle(f"{report['model']} v{report['version']} on {report['images']} Kodak images, 8-bit outputs")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
