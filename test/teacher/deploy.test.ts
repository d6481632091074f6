// Deployment templates under docs/deploy parse (YAML/JSON) and carry the fields the runbook relies on.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const read = (f: string) => readFileSync(`docs/deploy/${f}`, 'utf8');
const json = (f: string) => JSON.parse(read(f));

describe('docs/deploy', () => {
  it('Kubernetes: an Indexed Job whose completions equal --num-workers, then a finalize Job', () => {
    const docs = [
      ...parseAllDocuments(read('kubernetes/teacher-job.yaml')),
      ...parseAllDocuments(read('kubernetes/finalize-job.yaml')),
    ];
    for (const d of docs) expect(d.errors).toEqual([]);
    expect(docs).toHaveLength(2);
    const [job, fin] = docs.map((d) => d.toJSON());
    expect(job).toMatchObject({ apiVersion: 'batch/v1', kind: 'Job', spec: { completionMode: 'Indexed' } });
    const c = job.spec.template.spec.containers[0];
    expect(c.command).toEqual(['distill']);
    expect(c.args.slice(0, 2)).toEqual(['teacher', 'run']);
    const flag = (name: string) => c.args.find((a: string) => a.startsWith(`--${name}=`))?.split('=')[1];
    expect(Number(flag('num-workers'))).toBe(job.spec.completions);
    expect(job.spec.parallelism).toBeLessThanOrEqual(job.spec.completions);
    expect(flag('out')).toMatch(/^s3:\/\//);
    for (const f of ['model', 'data', 'top-k', 'shards', 'device']) expect(flag(f), f).toBeDefined();
    expect(c.args).toContain('--no-finalize');
    expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    expect(fin).toMatchObject({ apiVersion: 'batch/v1', kind: 'Job' });
    expect(fin.spec.template.spec.containers[0].args.slice(0, 3)).toEqual(['cache', 'finalize', flag('out')]);
  });

  it('AWS Batch: an array job whose size equals numWorkers, and a finalize job depending on it', () => {
    const def = json('aws-batch/job-definition.json');
    const submit = json('aws-batch/submit-teacher.json');
    const finDef = json('aws-batch/finalize-job-definition.json');
    const finSubmit = json('aws-batch/submit-finalize.json');
    expect(def.type).toBe('container');
    expect(submit.jobDefinition).toBe(def.jobDefinitionName);
    expect(Number(submit.parameters.numWorkers)).toBe(submit.arrayProperties.size);
    const cmd: string[] = def.containerProperties.command;
    expect(cmd.join(' ')).toMatch(/distill teacher run .*--num-workers "\$5".*--no-finalize/);
    // Every Ref:: the command uses has a default in the definition.
    for (const ref of cmd.filter((x) => x.startsWith('Ref::')))
      expect(def.parameters, ref).toHaveProperty(ref.slice(5));
    expect(cmd.indexOf('Ref::numWorkers') - cmd.indexOf('Ref::model')).toBe(5);
    expect(def.containerProperties.resourceRequirements).toContainEqual({ type: 'GPU', value: '1' });
    expect(submit.parameters.out).toMatch(/^s3:\/\//);
    expect(finSubmit.jobDefinition).toBe(finDef.jobDefinitionName);
    expect(finDef.containerProperties.command.slice(0, 3)).toEqual(['distill', 'cache', 'finalize']);
    expect(finSubmit.parameters.out).toBe(submit.parameters.out);
    expect(finSubmit.dependsOn).toHaveLength(1);
  });
});

describe('docs/deploy: a served teacher', () => {
  const docs = (f: string) =>
    parseAllDocuments(read(f)).map((d) => {
      expect(d.errors).toEqual([]);
      return d.toJSON();
    });

  it('an Indexed Job of CPU workers against the vLLM Service, writing to S3, then a finalize Job', () => {
    const all = docs('kubernetes/served-teacher-job.yaml');
    const [job, fin] = all.filter((d) => d.kind === 'Job');
    expect(job).toMatchObject({ apiVersion: 'batch/v1', spec: { completionMode: 'Indexed' } });
    const c = job.spec.template.spec.containers[0];
    expect(c.command).toEqual(['distill']);
    expect(c.args.slice(0, 2)).toEqual(['teacher', 'run']);
    const flag = (name: string) => c.args.find((a: string) => a.startsWith(`--${name}=`))?.split('=')[1];
    expect(flag('backend')).toBe('vllm');
    expect(Number(flag('num-workers'))).toBe(job.spec.completions);
    expect(flag('out')).toMatch(/^s3:\/\//);
    for (const f of ['endpoint', 'served-model', 'teacher-revision', 'data', 'top-k', 'shards', 'max-in-flight'])
      expect(flag(f), f).toBeDefined();
    expect(c.args).toContain('--no-finalize');
    expect(c.args.some((a: string) => a.startsWith('--model='))).toBe(false);
    expect(c.resources.limits?.['nvidia.com/gpu']).toBeUndefined();
    expect(fin.spec.template.spec.containers[0].args.slice(0, 3)).toEqual(['cache', 'finalize', flag('out')]);
    expect(fin.spec.template.spec.initContainers[0].command).toContain(`job/${job.metadata.name}`);
    // The finalize Job's waiter may read Jobs.
    const sa = fin.spec.template.spec.serviceAccountName;
    const binding = all.find((d) => d.kind === 'RoleBinding');
    expect(binding.subjects[0].name).toBe(sa);
    expect(all.find((d) => d.kind === 'Role').rules[0].resources).toContain('jobs');

    // The endpoint is the Service of vllm-teacher.yaml, and the server is started so the job's requests pass.
    const [service, deployment] = docs('kubernetes/vllm-teacher.yaml');
    const endpoint = new URL(flag('endpoint'));
    expect(endpoint.hostname).toBe(service.metadata.name);
    expect(Number(endpoint.port)).toBe(service.spec.ports[0].port);
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    const server = deployment.spec.template.spec.containers[0];
    const arg = (name: string) => server.args.find((a: string) => a.startsWith(`--${name}=`))?.split('=')[1];
    expect(arg('served-model-name')).toBe(flag('served-model'));
    expect(arg('revision')).toBe(flag('teacher-revision'));
    expect(Number(arg('max-logprobs'))).toBeGreaterThanOrEqual(Number(flag('top-k')));
    expect(server.args).toContain('--no-enable-prefix-caching');
    expect(server.args).toContain('--enable-expert-parallel');
    expect(Number(arg('port'))).toBe(service.spec.ports[0].targetPort);
  });
});
