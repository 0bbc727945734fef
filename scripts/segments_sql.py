#!/usr/bin/env python3
"""Prints the full segments recompute as plain SQL for psql, taken from src/segments/mod.rs
(so it cannot drift from the code): `th` the cut points of every program, `mem` every
member in one statement (no batches). Usage: segments_sql.py th|mem <instant>."""
import os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
src=open(ROOT+'/src/segments/mod.rs').read()
def fmt_body(fn):
    i=src.index('fn '+fn)
    j=src.index('format!(',i)
    k=src.index('"',j)
    e=src.index('",\n',k+1)
    return src[k+1:e]
raw=fmt_body('raw_cte')
th=fmt_body('thresholds_statement')
mem=fmt_body('member_statement')
def group_case(cell):
    cells=re.findall(r'\("(\d{3})", Group::(\w+)\)',open(ROOT+'/src/segments/rfm.rs').read())
    names={'Champions':'champions','Loyal':'loyal','Promising':'promising','New':'new','BigSpenders':'big_spenders','NeedsAttention':'needs_attention','AtRisk':'at_risk','CantLose':'cant_lose','Hibernating':'hibernating','Lost':'lost'}
    return "CASE "+cell+"".join(f" WHEN '{c}' THEN '{names[g]}'" for c,g in cells)+" ELSE 'no_purchases' END"
def sub(t, d):
    for k,v in d.items(): t=t.replace('{'+k+'}',v)
    return t.replace('{{','{').replace('}}','}')
def raw_cte(f): return sub(raw,{'filter':f,'window':'365'})
def thr(m,p,over):
    oc = "DO UPDATE SET source = EXCLUDED.source, window_days = EXCLUDED.window_days, buyers = EXCLUDED.buyers, r3_days = EXCLUDED.r3_days, r2_days = EXCLUDED.r2_days, f3 = EXCLUDED.f3, f2 = EXCLUDED.f2, m3 = EXCLUDED.m3, m2 = EXCLUDED.m2, computed_at = EXCLUDED.computed_at" if over else "DO NOTHING"
    t=th.replace('{raw}','@@RAW@@')
    t=sub(t,{'programs':p,'on_conflict':oc,'window':'365'})
    return t.replace('@@RAW@@',raw_cte(m))
def memst(f):
    t=mem.replace('{raw}','@@RAW@@').replace('{group}','@@G@@')
    t=sub(t,{'filter':f,'cooling':'60','lapsed':'180'})
    return t.replace('@@RAW@@',raw_cte(f)).replace('@@G@@',group_case("j.r::text || j.f::text || j.m::text"))
which=sys.argv[1]
if which=='th': print(thr('TRUE','TRUE',True).replace('$1',"'"+sys.argv[2]+"'::timestamptz")+';')
if which=='mem': print(memst("TRUE").replace('$1',"'"+sys.argv[2]+"'::timestamptz")+';')
