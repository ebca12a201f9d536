"""The benchmark's pure parts: guide script extraction, probe counting, replica generation (no lab)."""
from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench import guide
from lab import COMPOSE_FILE, LabError, scale

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = """\
#!/bin/bash
# a comment: docker ps here is no probe
echo "Host: $(hostname)"
docker ps --format "{{.Names}}"
for engine in analytics risk; do
  container="nautilus-${engine}-engine"
  if docker ps --format "{{.Names}}" | grep -q "$container"; then
    docker exec "$container" ping -c 2 redis >/dev/null 2>&1 && echo ok || echo failed
  fi
done
for port in {8100..8300..100}; do
  if timeout 5 nc -z localhost $port 2>/dev/null; then echo "open"; fi
done
for c in $(docker ps --format "{{.Names}}" | grep nautilus); do
  n=$(docker logs $c --since 1h 2>&1 | grep -i error | wc -l)
done
docker exec nautilus-postgres psql -U nautilus -c "
  SELECT 1;" 2>/dev/null || echo "Query failed"
"""


def test_the_headings_extracted_are_sections_of_the_guide():
    # checks/guide_sections.txt is the guide's section list, kept in the checkout: the headings bench/guide.py looks
    # for are checked against it here; the live guide is read, and refused in one line, by bench/run.py itself.
    sections = (ROOT / "checks" / "guide_sections.txt").read_text().splitlines()
    assert sections, "checks/guide_sections.txt is empty"
    for heading in guide.SCRIPTS.values():
        assert [s for s in sections if s.split(" > ")[-1] == heading], f"{heading!r} is no section of the guide"


def test_a_guide_that_is_missing_or_holds_no_bash_script_is_refused_in_one_line(tmp_path):
    with pytest.raises(guide.GuideError, match=r"cannot read the guide .*missing.md \(No such file or directory\)"):
        guide.extract_all(tmp_path / "missing.md")
    blocks = "".join(f"#### **{heading}**\n```bash\n#!/bin/bash\necho {key}\n```\n\n"
                     for key, heading in guide.SCRIPTS.items())
    (tmp_path / "guide.md").write_text(blocks)
    assert guide.extract_all(tmp_path / "guide.md") == {key: f"#!/bin/bash\necho {key}\n" for key in guide.SCRIPTS}
    (tmp_path / "guide.md").write_text(blocks.replace("#!/bin/bash\necho performance", "echo performance"))
    with pytest.raises(guide.GuideError, match="the block under 'Performance Bottleneck Detection' .* is no bash"):
        guide.extract_all(tmp_path / "guide.md")
    (tmp_path / "guide.md").write_text(blocks.split("#### **Performance")[0])
    with pytest.raises(guide.GuideError, match="no heading 'Performance Bottleneck Detection' in the guide"):
        guide.extract_all(tmp_path / "guide.md")


def test_the_benchmark_refuses_a_missing_guide_before_it_runs_anything(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--guide", str(tmp_path / "none.md")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"bench: cannot read the guide {tmp_path / 'none.md'} (No such file or directory); give "
                           "--guide PATH, or --no-guide\n")


def test_extraction_takes_the_block_under_its_heading():
    markdown = ("#### **Other**\n```bash\necho other\n```\n\n#### **Full System Health Check**\n"
                "```bash\n#!/bin/bash\necho mine\n```\n")
    assert guide.extract(markdown, "Full System Health Check") == "#!/bin/bash\necho mine\n"
    with pytest.raises(guide.GuideError):
        guide.extract(markdown, "Performance Bottleneck Detection")


def test_probes_are_counted_with_loops_unrolled():
    count = guide.count_probes(SAMPLE, ["nautilus-redis", "nautilus-postgres", "nautilus-x"])
    # hostname, docker ps, 2 x (docker ps guard + docker exec ping), 3 x nc, the loop's docker ps,
    # 3 x docker logs, docker exec psql
    assert count.invocations == 1 + 1 + 2 * 2 + 3 + 1 + 3 + 1
    assert count.by_command == {"hostname": 1, "docker ps": 4, "docker exec": 3, "nc": 3, "docker logs": 3}
    # `docker ps --format "{{.Names}}"` is one fact however often it is asked
    assert len(count.distinct) == 1 + 1 + 2 + 3 + 3 + 1
    assert 'docker exec "nautilus-risk-engine" ping -c 2 redis' in count.distinct
    assert "nc -z localhost 8300" in count.distinct


def test_simple_commands_split_substitutions_inside_quotes():
    assert guide.simple_commands('echo "Docker: $(docker --version)"; free -h | head') == \
        ['echo "Docker:', "docker --version", '"', "free -h", "head"]
    assert guide.probe_of("timeout 10 curl -s http://localhost:8100/health") == \
        "curl -s http://localhost:8100/health"
    assert guide.probe_of("grep -c docker") is None


@pytest.mark.parametrize("total", [27, 54])
def test_replicas_have_unique_names_ports_and_loopback_bindings(total, tmp_path):
    compose_doc = yaml.safe_load(COMPOSE_FILE.read_text())
    override = scale.override_document(compose_doc, total, lab_dir=tmp_path)
    services = override["services"]
    assert len(services) == total - 9
    names = [s["container_name"] for s in services.values()] + [
        s["container_name"] for s in compose_doc["services"].values()]
    assert len(names) == len(set(names))
    bindings = [p for s in [*services.values(), *compose_doc["services"].values()] for p in s.get("ports", [])]
    host_ports = [int(p.rsplit(":", 2)[1]) for p in bindings]
    assert len(host_ports) == len(set(host_ports))
    for binding in bindings:
        address, host_port, container_port = binding.rsplit(":", 2)
        assert ipaddress.ip_address(address).is_loopback and address == "127.0.0.1"
    for body in services.values():
        assert body["environment"]["ENGINE_PORT"] == body["ports"][0].rsplit(":", 1)[1]
        assert all(not v.startswith("./") for v in body["volumes"])


def test_replica_inventory_copies_each_engine_entry(tmp_path):
    compose_doc = yaml.safe_load(COMPOSE_FILE.read_text())
    override = scale.override_document(compose_doc, 27, lab_dir=tmp_path)
    lab_inventory = yaml.safe_load((ROOT / "lab" / "inventory.yaml").read_text())
    defaults = {"engines": {"risk": {"port": 8200, "health": {"rules": {"monitoring_active": {"equals": True}}}}}}
    document = scale.inventory_document(lab_inventory, override, defaults, lab_dir=tmp_path)
    engines = document["engines"]
    replicas = {k: v for k, v in engines.items() if "-r" in k}
    assert len(replicas) == 18
    assert replicas["risk-r3"]["container"] == "nautilus-risk-engine-r3"
    assert replicas["risk-r3"]["port"] == 8202
    assert "monitoring_active" not in replicas["risk-r3"]["health"]["rules"]  # the lab's null removes the default
    assert replicas["risk-r3"]["metrics"]["format"] == "json"
    ports = [v["port"] for v in replicas.values()]
    assert len(ports) == len(set(ports)) and not set(ports) & set(range(8100, 8901, 100))
    assert document["log_dir"] == str((tmp_path / ".state/logs").resolve())
    from observation.inventory import Inventory, _merge, default_document
    Inventory.model_validate(_merge(default_document(), document))  # the suite accepts it


def test_engine_counts_must_be_multiples_of_nine():
    for bad in (8, 10, 28):
        with pytest.raises(LabError):
            scale.replicas_per_engine(bad)
    assert scale.replicas_per_engine(54) == 6
