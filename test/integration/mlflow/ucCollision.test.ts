/**
 * Unity Catalog names collide where Sluice names do not (lower-case, "." and "-" as "_"), and a model
 * of that name may be a team's own. Against the fake's Unity Catalog endpoints over HTTP: the model
 * Sluice creates is tagged with the Sluice name it mirrors; a model tagged with another Sluice name
 * is refused (`mlflow_uc_name_collision`, naming both); an untagged one is adopted (tag set) only
 * when every version it holds is one Sluice registered for that very Sluice name (its description,
 * or a hand-set version tag), and refused (`mlflow_uc_model_not_sluice`) when it holds others (a
 * team's, or another Sluice name's from before models were tagged) or none at all. A refusal
 * creates no version and writes no file.
 */
import type { ExportedFolder } from '../../../lib/mlflow/export';
import { MlflowClient } from '../../../lib/mlflow/client';
import { registerUcVersion, ucModelName } from '../../../lib/mlflow/unityCatalog';
import { pipelineNameSchema } from '../../../lib/pipelines/definition';
import { FakeMlflow } from '../../support/fakes/mlflow';

const folder: ExportedFolder = {
  digest: 'd'.repeat(64),
  origin: 'stored',
  paths: ['MLmodel', 'model.onnx'],
  async *files() {
    yield { path: 'MLmodel', bytes: Buffer.from('flavors:\n  onnx: {}\n') };
    yield { path: 'model.onnx', bytes: Buffer.from('onnx-bytes') };
  },
};
const sluiceTags = [{ key: 'sluice.version', value: '1' }];

describe('Unity Catalog name collisions', () => {
  let fake: FakeMlflow;
  let client: MlflowClient;
  const register = (name: string, owner: string) =>
    registerUcVersion(client, { name, source: 's', tags: sluiceTags }, folder, {
      blobUrl: fake.ucBlobUrl,
      owner,
    });
  const made = () => fake.calls.filter((c) => c.path === 'unity-catalog/model-versions/create');

  beforeAll(async () => {
    fake = await new FakeMlflow().start();
    client = new MlflowClient({
      target: { baseUrl: fake.url, auth: { kind: 'none' }, flavor: 'databricks', unityCatalog: true },
      sleep: async () => undefined,
    });
  });
  afterAll(() => fake?.stop());

  it('maps names the way Unity Catalog keeps them: two registry names can meet', () => {
    expect(ucModelName('main.ml', 'churn-eu')).toBe('main.ml.churn_eu');
    expect(ucModelName('main.ml', 'Churn.EU')).toBe('main.ml.churn_eu');
    // Pipeline model names (lower-case letters, digits, "-") never meet: "-" is the only character
    // rewritten and "_" is not one of theirs, so the Unity Catalog name gives the pipeline name back.
    // That is why pipelines are not checked against each other when stored (docs/mlflow.md).
    const alphabet = 'abz09-';
    for (let i = 0; i < 2_000; i++) {
      let name = 'm';
      for (let j = 0; j < 1 + (i % 7); j++) name += alphabet[(i * 7 + j * 13) % alphabet.length];
      name += 'x';
      expect(pipelineNameSchema.safeParse(name).success).toBe(true);
      expect(ucModelName('main.ml', name).slice('main.ml.'.length).replace(/_/g, '-')).toBe(name);
    }
  });

  it('tags the model it creates, and keeps registering into its own', async () => {
    await register('main.ml.churn_eu', 'churn-eu');
    expect(fake.calls[0]!.body).toEqual({
      name: 'main.ml.churn_eu',
      tags: [{ key: 'sluice.model', value: 'churn-eu' }],
    });
    fake.calls.length = 0;
    await register('main.ml.churn_eu', 'churn-eu');
    expect(fake.okCalls().slice(0, 2)).toEqual([
      'GET unity-catalog/registered-models/get',
      'POST unity-catalog/model-versions/create',
    ]);
    expect(fake.models.get('main.ml.churn_eu')!.versions).toHaveLength(2);
  });

  it('refuses a Sluice model whose name lands on a model another Sluice model has, naming both', async () => {
    fake.calls.length = 0;
    const err = await register('main.ml.churn_eu', 'Churn.EU').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'mlflow_uc_name_collision' });
    const message = (err as Error).message;
    expect(message).toContain('Sluice model Churn.EU');
    expect(message).toContain('Sluice model churn-eu');
    expect(message).toContain('main.ml.churn_eu');
    expect(message).toContain('MLFLOW_UC_SCHEMA');
    expect(made()).toEqual([]);
    expect(fake.models.get('main.ml.churn_eu')!.versions).toHaveLength(2);
  });

  it("refuses a team's own model (versions Sluice did not register), naming them", async () => {
    fake.ucSeedVersion('main.ml.fraud', { MLmodel: 'x' });
    fake.ucSeedVersion('main.ml.fraud', { MLmodel: 'x' });
    fake.calls.length = 0;
    const err = await register('main.ml.fraud', 'fraud').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'mlflow_uc_model_not_sluice' });
    expect((err as Error).message).toMatch(/versions Sluice did not register \(1, 2\)/);
    expect((err as Error).message).toContain('sluice.model=fraud');
    expect(fake.calls.find((c) => c.path === 'unity-catalog/model-versions/search')!.body).toMatchObject({
      filter: "name='main.ml.fraud'",
    });
    expect(made()).toEqual([]);
    expect(fake.ucModelTags.get('main.ml.fraud')).toBeUndefined();
    // Handed to Sluice by its tag, the model takes Sluice's versions.
    fake.ucModelTags.set('main.ml.fraud', [{ key: 'sluice.model', value: 'fraud' }]);
    await expect(register('main.ml.fraud', 'fraud')).resolves.toMatchObject({
      version: '3',
      status: 'READY',
    });
  });

  it('adopts an untagged model that holds only versions Sluice registered for that name (made before models were tagged)', async () => {
    fake.ucSeedVersion(
      'main.ml.wages',
      { MLmodel: 'x' },
      { tags: sluiceTags, description: "Sluice wages version 1, deployed by Sluice's approval gate" },
    );
    // A version marked for this Sluice name by hand (the version tag sluice.model) counts too.
    fake.ucSeedVersion(
      'main.ml.wages',
      { MLmodel: 'x' },
      { tags: [...sluiceTags, { key: 'sluice.model', value: 'wages' }] },
    );
    for (const [uc, sluice] of [['main.ml.wages', 'wages']] as const) {
      fake.calls.length = 0;
      await register(uc, sluice);
      expect(fake.okCalls()).toEqual(
        expect.arrayContaining([
          'GET unity-catalog/model-versions/search',
          'POST unity-catalog/registered-models/tags',
          'POST unity-catalog/model-versions/finalize',
        ]),
      );
      expect(fake.ucModelTags.get(uc)).toEqual([{ key: 'sluice.model', value: sluice }]);
    }
  });

  it('refuses an untagged model whose Sluice versions were registered for another Sluice name (a collision from before models were tagged)', async () => {
    // Churn-DE mirrored into main.ml.churn_de before models were tagged; churn.de lands there too.
    fake.ucSeedVersion(
      'main.ml.churn_de',
      { MLmodel: 'x' },
      { tags: sluiceTags, description: "Sluice Churn-DE version 1, deployed by Sluice's approval gate" },
    );
    // The sluice.version tag alone (a description a team wrote) is no proof either.
    fake.ucSeedVersion(
      'main.ml.churn_fr',
      { MLmodel: 'x' },
      { tags: sluiceTags, description: 'churn model' },
    );
    fake.ucSeedVersion('main.ml.churn_fr', { MLmodel: 'x' }, { tags: sluiceTags });
    for (const [uc, sluice, versions] of [
      ['main.ml.churn_de', 'churn.de', '1'],
      ['main.ml.churn_de', 'churn_de', '1'],
      ['main.ml.churn_fr', 'churn-fr', '1, 2'],
    ] as const) {
      fake.calls.length = 0;
      const err = await register(uc, sluice).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'mlflow_uc_model_not_sluice' });
      expect((err as Error).message).toContain(
        `holds versions Sluice did not register (${versions}) as Sluice model ${sluice}:`,
      );
      expect((err as Error).message).toContain(`sluice.model=${sluice}`);
      expect(made()).toEqual([]);
      expect(fake.ucModelTags.get(uc)).toBeUndefined();
    }
    // The Sluice model the versions name is the one that takes it.
    await expect(register('main.ml.churn_de', 'Churn-DE')).resolves.toMatchObject({ version: '2' });
    expect(fake.ucModelTags.get('main.ml.churn_de')).toEqual([{ key: 'sluice.model', value: 'Churn-DE' }]);
  });

  it('refuses an empty untagged model (someone else made it) until it is tagged by hand', async () => {
    fake.models.set('main.ml.empty', { name: 'main.ml.empty', versions: [], aliases: new Map() });
    fake.calls.length = 0;
    const err = await register('main.ml.empty', 'empty').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'mlflow_uc_model_not_sluice' });
    expect((err as Error).message).toContain('holds no versions');
    expect((err as Error).message).toContain('set its tag sluice.model=empty');
    expect(made()).toEqual([]);
    expect(fake.ucModelTags.get('main.ml.empty')).toBeUndefined();
    expect(fake.models.get('main.ml.empty')!.versions).toHaveLength(0);
    // Handed to Sluice by its tag (what docs/mlflow.md tells a team to do): registered into.
    fake.ucModelTags.set('main.ml.empty', [{ key: 'sluice.model', value: 'empty' }]);
    await expect(register('main.ml.empty', 'empty')).resolves.toMatchObject({
      version: '1',
      status: 'READY',
    });
  });
});
