import Foundation

extension PlanReport {
    /// A self-contained HTML page: the SVG timeline and the text report, no scripts, no external resources.
    public func html() -> String {
        var svgText = svg()
        if let range = svgText.range(of: "?>\n") { svgText = String(svgText[range.upperBound...]) }
        let title = SVGCanvas.escape("kiln plan" + (name.map { ": \($0)" } ?? ""))
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>\(title)</title>
            <style>
            body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px; color: #111; background: #fff; }
            .verdict { font-weight: bold; color: \(feasible ? "#1b7f3b" : "#b42318"); }
            pre { background: #f6f8fa; padding: 12px; border-radius: 6px; font-size: 12px; overflow-x: auto; }
            svg { max-width: 100%; height: auto; }
            </style>
            </head>
            <body>
            <p class="verdict">\(feasible ? "Feasible" : "Infeasible"). Bottleneck \(SVGCanvas.escape(bottleneck.rawValue)): \(SVGCanvas.escape(bottleneckDetail)).</p>
            \(svgText)
            <h2>Report</h2>
            <pre>\(SVGCanvas.escape(text()))</pre>
            </body>
            </html>

            """
    }
}
