import { folderPathProblem } from '../../../lib/mlmodel/blobFolder';

describe('folderPathProblem: the one check on a model folder file path', () => {
  it.each(['MLmodel', 'model.onnx', 'sub/notes.txt', 'a..b', '..a/b', 'a/b..', 'répertoire/modèle.onnx'])(
    'accepts %j',
    (ok) => {
      expect(folderPathProblem(ok)).toBeUndefined();
    },
  );

  it.each([
    ['', 'an empty path'],
    ['..', 'a ".." segment'],
    ['../x', 'a ".." segment'],
    ['a/..', 'a ".." segment'],
    ['a/../b', 'a ".." segment'],
    ['/x', 'an absolute path'],
    ['a\\b', 'a backslash'],
    ['..\\x', 'a backslash'],
    ['a\u0000b', 'a control character'],
    ['a\tb', 'a control character'],
    ['a\u007fb', 'a control character'],
    ['./a', 'a "." segment'],
    ['a//b', 'an empty segment'],
    ['a/', 'an empty segment'],
  ])('refuses %j (%s)', (bad, problem) => {
    expect(folderPathProblem(bad)).toBe(problem);
  });
});
