"""Copies examples/python/verify.py and examples/typescript/verify.ts into README.md's
"OpenAPI and generated clients" section (tests/api/openapi.rs checks that they are equal)."""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
readme = (root / "README.md").read_text()
for fence, path in (("python", "examples/python/verify.py"), ("typescript", "examples/typescript/verify.ts")):
    code = (root / path).read_text()
    placeholder = f"```{fence}\n@@{fence.upper()}@@```"
    if placeholder in readme:
        readme = readme.replace(placeholder, f"```{fence}\n{code}```")
    else:
        pattern = re.compile(rf"(<summary><code>{re.escape(path)}</code></summary>\n\n```{fence}\n).*?(```\n)", re.S)
        readme, n = pattern.subn(lambda m: m.group(1) + code + m.group(2), readme)
        assert n == 1, path
(root / "README.md").write_text(readme)
