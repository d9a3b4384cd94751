"""Which local model, prompt and sampling give rewrites that the fidelity gate accepts?

Rewrites the first chunks of documents a run kept (its quality stage output) with one model
through bare vLLM, cleans them as the rewrite stage does, and scores every output with the
fidelity gate. Prints accepted shares per style x prompt variant x sampling, and the drop
reasons. One model per process (vLLM holds one engine); run it once per candidate.

    python bench/rewrite_candidates.py --model .cache/models/smollm2-135m-instruct \
        --run outputs/exp --docs-per-source 6 --samples 2 --out /tmp/cand_smollm2.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

VLLM_ENV = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_KVCACHE_SPACE": "2",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "VLLM_CPU_OMP_THREADS_BIND": "0-1",
    "OMP_NUM_THREADS": "2",
}
SAMPLINGS = {
    "greedy": {"temperature": 0.0, "max_tokens": 320},
    "t0.3": {"temperature": 0.3, "top_p": 0.9, "repetition_penalty": 1.05, "max_tokens": 320},
    "t0.7": {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1, "max_tokens": 320},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a local HF checkpoint folder")
    p.add_argument("--run", default="outputs/exp", help="a run dir with quality output")
    p.add_argument("--docs-per-source", type=int, default=6)
    p.add_argument("--chunks-per-doc", type=int, default=1)
    p.add_argument("--chunk-tokens", type=int, default=256)
    p.add_argument("--styles", default="")
    p.add_argument("--variants", default="")
    p.add_argument("--samplings", default="t0.7")
    p.add_argument("--samples", type=int, default=1, help="seeds per prompt")
    p.add_argument("--out", default="")
    args = p.parse_args()
    os.environ.update(VLLM_ENV)
    from vllm import LLM, SamplingParams  # before pyarrow-heavy imports (FACTS.md)

    llm = LLM(
        model=args.model,
        dtype="float32",
        max_model_len=4096,
        enforce_eager=True,
        distributed_executor_backend="uni",
        enable_prefix_caching=True,
        enable_chunked_prefill=False,
    )
    # Imported after the engine starts: numba-heavy modules first break its start (FACTS.md).
    import pyarrow.parquet as pq
    from bench_prompts import VARIANTS, build

    from pipeline import schema as S
    from pipeline.config.fidelity import FidelityConfig
    from pipeline.rewrite.chunking import chunk_document
    from pipeline.rewrite.stage import doc_rank
    from pipeline.score_rules import failing_rules
    from pipeline.text_fidelity.cleaning import clean_generation
    from pipeline.text_fidelity.scores import fidelity_rules, fidelity_scores

    tok = llm.get_tokenizer()
    table = pq.read_table(Path(args.run) / "quality" / "data")
    docs = table.select([S.DOC_ID, S.SOURCE, S.TEXT]).to_pylist()
    by_source = defaultdict(list)
    for d in sorted(docs, key=lambda d: doc_rank(d[S.DOC_ID], 0)):
        by_source[d[S.SOURCE]].append(d)
    chunks = []
    count = lambda t: len(tok.encode(t, add_special_tokens=False))  # noqa: E731
    for source, ds in sorted(by_source.items()):
        for d in ds[: args.docs_per_source]:
            for c in chunk_document(d[S.DOC_ID], d[S.TEXT], count, args.chunk_tokens)[
                : args.chunks_per_doc
            ]:
                chunks.append((source, c.text))
    styles = args.styles.split(",") if args.styles else None
    variants = args.variants.split(",") if args.variants else list(VARIANTS)
    gate = FidelityConfig()
    results = []
    for variant in variants:
        for style in styles or VARIANTS[variant]:
            prompts = [
                tok.apply_chat_template(
                    build(variant, style, text), tokenize=False, add_generation_prompt=True
                )
                for _, text in chunks
            ]
            for sname in args.samplings.split(","):
                params = [
                    SamplingParams(**SAMPLINGS[sname], seed=1000 * k + i)
                    for k in range(args.samples)
                    for i in range(len(prompts))
                ]
                started = time.perf_counter()
                outs = llm.generate(prompts * args.samples, params, use_tqdm=False)
                seconds = time.perf_counter() - started
                rules = fidelity_rules(gate, style)
                for j, out in enumerate(outs):
                    source, text = chunks[j % len(chunks)]
                    o = out.outputs[0]
                    cleaned = clean_generation(o.text, o.finish_reason)
                    if cleaned.reason:
                        reason = cleaned.reason
                    else:
                        scores = fidelity_scores(
                            cleaned.text, text, finish_reasons=[o.finish_reason], cfg=gate
                        )
                        failed = failing_rules(scores, rules)
                        reason = failed[0].name if failed else None
                    results.append(
                        {
                            "variant": variant,
                            "style": style,
                            "sampling": sname,
                            "source": source,
                            "reason": reason,
                            "text": cleaned.text,
                            "raw": o.text,
                            "chunk": text,
                            "tokens": len(o.token_ids),
                        }
                    )
                n = len(outs)
                ok = sum(r["reason"] is None for r in results[-n:])
                why = Counter(r["reason"] for r in results[-n:] if r["reason"])
                toks = sum(r["tokens"] for r in results[-n:])
                print(
                    f"{variant:10} {style:16} {sname:7} accepted {ok:3}/{n:<3} "
                    f"({ok / n:4.0%})  {toks / seconds:5.0f} tok/s  {dict(why.most_common(4))}",
                    flush=True,
                )
                if args.out:  # after every cell: a long sweep stopped early keeps its results
                    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
