"""DR reports (DR plan 정기 검토: monthly DR review, quarterly test-result analysis), computed from
the catalog alone and stored in it (both regions):

    reports/monthly/<YYYY-MM>/report.html, report.pdf, report.json   (+ charts/*.png)
    reports/quarterly/<YYYY>-Q<n>/...

`data` computes the numbers (report.json holds them), `charts` draws them (matplotlib), `render`
makes the HTML and the PDF (WeasyPrint), `jobs.generate` does all of it for a DAG task or the CLI.
"""
