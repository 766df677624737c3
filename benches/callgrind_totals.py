#!/usr/bin/env python3
import sys,re
# callgrind output -> "total_Ir allocation_calls" (calls to malloc/calloc/realloc/aligned allocs)
names={}
total=None
allocs=0
cur_cfn=None
alloc_fns={'malloc','calloc','realloc','memalign','posix_memalign','aligned_alloc'}
pat=re.compile(r'(c?fn)=\((\d+)\)(?: (.*))?$')
for line in open(sys.argv[1],errors='replace'):
    line=line.rstrip('\n')
    if line.startswith('summary:') or line.startswith('totals:'):
        total=int(line.split()[1])
    elif line.startswith('fn=') or line.startswith('cfn='):
        m=pat.match(line)
        if m:
            if m.group(3) is not None: names[m.group(2)]=m.group(3)
            name=names.get(m.group(2),'')
        else:
            name=line.split('=',1)[1]
        if line.startswith('cfn='): cur_cfn=name
    elif line.startswith('calls='):
        if cur_cfn in alloc_fns:
            allocs+=int(line[6:].split()[0])
print(total, allocs)
